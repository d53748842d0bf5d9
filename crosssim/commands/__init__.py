"""Subcommands of the ``crosssim`` command line; each module has add_arguments/execute."""
