"""python -m extractor: the same CLI as `pubmed-evidence`."""
from extractor.cli import main

main()
