"""Stand-in for MoonshotAI/Kimi-Audio@faedaac ``kimia_infer/__init__.py``."""
