"""``python -m nerlit.train``: runs ``nerlit train`` (:mod:`nerlit.commands.train`)."""

if __name__ == "__main__":
    import sys

    from nerlit.commands.cli import main

    main(["train", *sys.argv[1:]])
