"""``python -m nerlit.serve``: runs ``nerlit serve`` (:mod:`nerlit.commands.serve`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["serve", *sys.argv[1:]])
