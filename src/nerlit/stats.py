"""``python -m nerlit.stats``: runs ``nerlit stats`` (:mod:`nerlit.commands.stats`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["stats", *sys.argv[1:]])
