"""The generated parts of docs/: pure renderers (from the registry and the Settings class) and
the files they fill. Nothing here reads the environment or writes unless asked, so a test and
`intervene docs check` compare exactly what `intervene docs generate` would write."""
