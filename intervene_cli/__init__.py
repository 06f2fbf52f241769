"""The `intervene` command line."""
