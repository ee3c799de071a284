"""The ``initlab`` command: one module per subcommand group, each with ``register(subparsers)``.

May import everything below it (catalog, backends, model, methods, diagnostics, lab, scale);
nothing imports it.
"""
