import pytest

from mlbook.notebook import markdown_table, markdown_table_text


@pytest.mark.book  # markdown_table returns IPython's Markdown
def test_markdown_table_writes_header_alignment_and_rows_as_given():
    table = markdown_table(["layer", "shape", "parameters"],
                           [["conv", (None, 26, 26, 8), f"{80:,}"], ["**total**", "", f"**{12345:,}**"]], align="-lr")
    assert table.data == ("| layer | shape | parameters |\n"
                          "|---|:---|---:|\n"
                          "| conv | (None, 26, 26, 8) | 80 |\n"
                          "| **total** |  | **12,345** |")


def test_markdown_table_escapes_pipes_centres_and_defaults_alignment():
    assert markdown_table_text(["a|b", "c"], [("x | y", 0.5)], align="cr") == (
        "| a\\|b | c |\n|:---:|---:|\n| x \\| y | 0.5 |")
    assert markdown_table_text(["a", "b"], iter([(1, 2)])) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert markdown_table_text(["only"], []) == "| only |\n|---|"


@pytest.mark.parametrize(("header", "rows", "align", "message"), [
    (["a", "b"], [(1, 2), (3,)], None, r"row 2 has 1 cell\(s\) for 2 column\(s\)"),
    (["a", "b"], [(1, 2, 3)], None, r"row 1 has 3 cell\(s\) for 2 column\(s\)"),
    (["a", "b"], [], "l", r"1 character\(s\) for 2 column\(s\)"),
    (["a", "b"], [], "lx", r"unknown character\(s\) \['x'\]"),
    ([], [], None, "at least one column"),
    (["a"], [("two\nlines",)], None, "line break"),
])
def test_markdown_table_rejects_bad_input(header, rows, align, message):
    with pytest.raises(ValueError, match=message):
        markdown_table_text(header, rows, align)
