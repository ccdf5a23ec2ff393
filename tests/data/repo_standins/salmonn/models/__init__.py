"""Stand-in for bytedance/SALMONN (branch salmonn, a58bba7) ``models/__init__.py``."""
