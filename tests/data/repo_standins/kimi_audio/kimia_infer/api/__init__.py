"""Stand-in for MoonshotAI/Kimi-Audio@faedaac ``kimia_infer/api/__init__.py``."""
