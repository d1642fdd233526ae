"""What ``blindmatch demo`` needs: a two-organisation workspace, daemon processes, refusal probes, synthetic people."""
