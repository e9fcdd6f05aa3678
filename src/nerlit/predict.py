"""``python -m nerlit.predict``: runs ``nerlit predict`` (:mod:`nerlit.commands.predict`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["predict", *sys.argv[1:]])
