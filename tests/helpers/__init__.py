"""Test helpers shared by several test modules (not collected: their names do not start with test_)."""
