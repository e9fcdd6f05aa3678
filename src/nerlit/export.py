"""``python -m nerlit.export``: runs ``nerlit export`` (:mod:`nerlit.commands.export`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["export", *sys.argv[1:]])
