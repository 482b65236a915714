"""The `# layerc: disable=...` comment reader."""
import time

from layerc.lint.suppress import disabled


def test_comments_give_their_codes_and_columns_by_line():
    text = ("a: 1  # layerc: disable=LC101, LC202\n#layerc: disable=LC1\nx: \"#layerc: disable=LC3\"\n\n"
            "  # layerc:disable = LC4,LC5 # more\nlayerc: 1 # layerc: disable=LC6\ny: 2 # layerc: enable=LC7\n")
    assert disabled(text) == {1: [("LC101", 25), ("LC202", 32)], 2: [("LC1", 18)],
                              5: [("LC4", 22), ("LC5", 26)], 6: [("LC6", 29)]}


def test_a_large_file_without_comments_is_read_fast():
    text = "layerc: 1\n" + ("# " + "x" * 98 + "\n") * 100_000
    start = time.perf_counter()
    assert disabled(text) == {}
    assert time.perf_counter() - start < 1  # a regex over every line took 1.6 s here
