"""The labelled training corpus: how its items were chosen, and how labels were merged.

``sample``: draw items from the unlabelled pools by stratum, group same-story items, and write
annotation batches. ``merge``: agreement between two annotators, the disagreements for the
adjudicator, and the final labelled corpus. Both are deterministic for a given input and seed;
the corpus in ``tests/data/corpus/`` records the commands and figures that made it.
"""
