"""What the planner playbooks' plans share: the default estimate of a walk through traffic
steps, and how the steps read."""

BASE_SECONDS = 5  # the default estimate (playbooks/estimates.py scales it)


def estimate(steps: int, step_seconds: float) -> tuple[int, float]:
    """Seconds and USD by default: the pauses between the steps, and a little."""
    return int(step_seconds * (steps - 1)) + BASE_SECONDS, 0.0


def describe_steps(steps: list[dict[str, int]], versions: list[str]) -> list[str]:
    """One sentence per version: `v1.2.3: 20% -> 10% -> 0%`."""
    return [
        f"{version}: " + " -> ".join(f"{step.get(version, 0)}%" for step in steps)
        for version in versions
    ]
