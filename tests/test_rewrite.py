"""Specification of the Related Hypotheses rewriter: only the owned block ever changes."""

from __future__ import annotations

import pytest
from pages import PageSpec

from debate.kb.parse import ParsedPage, parse_page
from debate.kb.rewrite import replace_related_section

HEADER = "Related Hypotheses\nFrom the [SciDEX Exchange](/exchange) — scored by multi-agent debate\n"
LINE_A = "- [SOD1 knockdown](/hypothesis/h-0123abcd) — <span>0.70</span> · Target: SOD1\n"
LINE_B = "- [FUS granules](/hypothesis/h-4567cdef) 🔄\n"


def rendered_block(parsed: ParsedPage) -> str:
    """The page's section rebuilt by hand from its parsed lines (as a renderer would emit it)."""
    (related,) = [s for s in parsed.sections if s.heading == "Related Hypotheses"]
    return "Related Hypotheses\n" + "".join(f"{line}\n" for line in related.lines)


class TestExportedPage:
    """On each page of ``pages.py``."""

    def test_unchanged_section_round_trips_byte_for_byte(self, page_text: str, parsed_page: ParsedPage) -> None:
        block = rendered_block(parsed_page)
        assert parsed_page.related_span is not None
        start, end = parsed_page.related_span
        assert block == page_text[start:end]
        assert replace_related_section(page_text, parsed_page, block) == page_text

    def test_changed_line_changes_only_that_line(self, page_text: str, parsed_page: ParsedPage, spec: PageSpec) -> None:
        old = rendered_block(parsed_page)
        rescored = round(spec.scores[0] + 0.02, 2)
        top = f"</span> · Target: {spec.top_target}"
        new = old.replace(f">{spec.scores[0]:.2f}{top}", f">{rescored:.2f}{top}")
        assert new != old
        out = replace_related_section(page_text, parsed_page, new)
        before, after = page_text.split("\n"), out.split("\n")
        assert len(before) == len(after)
        changed = [i + 1 for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert changed == [parsed_page.related[0].line]
        reparsed = parse_page(out, source_name=spec.name)
        assert reparsed.related[0].score == rescored
        assert reparsed.metadata == parsed_page.metadata

    def test_shorter_list_keeps_the_rest_of_the_page(
        self, page_text: str, parsed_page: ParsedPage, spec: PageSpec
    ) -> None:
        out = replace_related_section(page_text, parsed_page, HEADER + LINE_A + LINE_B)
        assert parsed_page.related_span is not None
        start, end = parsed_page.related_span
        assert out.startswith(page_text[:start])
        assert out.endswith(page_text[end:])
        reparsed = parse_page(out, source_name=spec.name)
        assert [r.id for r in reparsed.related] == ["h-0123abcd", "h-4567cdef"]
        assert reparsed.related[1].kind == "hypothesis" and reparsed.related[1].in_progress
        assert reparsed.infobox == parsed_page.infobox and reparsed.facts == parsed_page.facts

    def test_empty_section_leaves_text_unchanged(self, page_text: str, parsed_page: ParsedPage) -> None:
        assert replace_related_section(page_text, parsed_page, "") == page_text


class TestInsertion:
    def test_inserted_before_metadata(self) -> None:
        text = (
            "Tofersen\nOverview\n- Status: approved\n"
            "▸Metadata\n| slug | therapeutics-tofersen |\nNo provenance edges found"
        )
        parsed = parse_page(text, source_name="t.txt")
        assert not parsed.has_related_section
        out = replace_related_section(text, parsed, HEADER + LINE_A)
        assert out == (
            "Tofersen\nOverview\n- Status: approved\n"
            + HEADER
            + LINE_A
            + "▸Metadata\n| slug | therapeutics-tofersen |\nNo provenance edges found"
        )
        reparsed = parse_page(out, source_name="t.txt")
        assert [r.id for r in reparsed.related] == ["h-0123abcd"]
        assert replace_related_section(out, reparsed, HEADER + LINE_A) == out

    def test_inserted_at_end_adds_a_newline_when_missing(self) -> None:
        text = "Tofersen\nOverview\n- Status: approved"
        out = replace_related_section(text, parse_page(text, source_name="t.txt"), HEADER + LINE_A)
        assert out == text + "\n" + HEADER + LINE_A

    def test_inserted_at_end_after_a_final_newline(self) -> None:
        text = "Tofersen\nOverview\n- Status: approved\n"
        out = replace_related_section(text, parse_page(text, source_name="t.txt"), HEADER + LINE_B)
        assert out == text + HEADER + LINE_B


class TestLineEndings:
    def test_crlf_page_gets_a_crlf_section(self) -> None:
        text = (
            "Tofersen\r\nOverview\r\n- Status: approved\r\n"
            + (HEADER + LINE_A).replace("\n", "\r\n")
            + "▸Metadata\r\n| slug | therapeutics-tofersen |\r\n"
        )
        parsed = parse_page(text, source_name="t.txt")
        assert replace_related_section(text, parsed, HEADER + LINE_A) == text
        out = replace_related_section(text, parsed, HEADER + LINE_A + LINE_B)
        assert out == text.replace(LINE_A.replace("\n", "\r\n"), (LINE_A + LINE_B).replace("\n", "\r\n"))
        assert "\n" not in out.replace("\r\n", "")

    def test_block_ending_the_file_without_newline_round_trips(self) -> None:
        text = "FUS\n" + HEADER + LINE_A.rstrip("\n")
        parsed = parse_page(text, source_name="fus.txt")
        assert replace_related_section(text, parsed, HEADER + LINE_A) == text
        out = replace_related_section(text, parsed, HEADER + LINE_A + LINE_B)
        assert out == "FUS\n" + HEADER + LINE_A + LINE_B.rstrip("\n")


def test_page_parsed_from_other_text_is_refused() -> None:
    text = "FUS\nOverview\n- Note: x\n" + HEADER + LINE_A
    parsed = parse_page(text, source_name="fus.txt")
    with pytest.raises(ValueError, match="do not match"):
        replace_related_section("Another page\n" + text, parsed, HEADER + LINE_B)
