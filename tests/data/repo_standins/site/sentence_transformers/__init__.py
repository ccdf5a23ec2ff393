"""Stand-in for sentence-transformers: the ``util`` module MGA-CLAP imports."""
