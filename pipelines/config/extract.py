"""The curate job's `extract` section: limits, HTML and PDF settings (pipelines/extract/ reads them)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from pipelines.config.base import Section, Strings, resolve
from pipelines.runtime import storage


class HtmlSettings(Section):
    metadata: bool = Field(True, description="title, author, date, site name, host name, description as the "
                                             "page's markup declares them (meta tags, JSON-LD, <title>)")
    metadata_search: bool = Field(False, description="also search the page for a byline and its text for a date "
                                                     "where the markup declares none (about 55 ms a page)")
    include_comments: bool = False
    include_tables: bool = True
    favor_precision: bool = False
    favor_recall: bool = False
    fast: bool = Field(False, description="trafilatura without its fallbacks on every page (with route on, the "
                                          "router leaves them out where the markup makes a page surely a "
                                          "shop's or a service's)")
    route: bool = Field(True, description="keep trafilatura's text, the page's main region or the region's lines "
                                          "scored as content, as the page router predicts is best "
                                          "(pipelines/extract/route.py); false: trafilatura alone")
    route_model: str | None = Field(None, description="the router's models as `python -m classifiers.page_route "
                                                      "train` writes them (trained on pages of your own); "
                                                      "default: the ones refinery ships")

    @field_validator("route_model")
    @classmethod
    def _router_file(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None:
            return None
        from pipelines.extract import route

        full = resolve(path, info)
        if not storage.isfile(full):
            raise ValueError(f"router model not found: {path} (train one with `python -m classifiers.page_route "
                             "train`)")
        local = storage.local_copy(full)
        try:
            route.load(local)
        except ValueError as e:
            raise ValueError(str(e).replace(local, path)) from None
        return full


class PdfSettings(Section):
    ocr: Literal["auto", "always", "never"] = Field("auto", description="auto: pages without a usable text layer")
    ocr_engine: str = "tesseract"
    ocr_languages: Annotated[Strings, Field(min_length=1)] = ("eng",)
    dpi: int = Field(300, ge=50, le=1200)
    max_pages: int = Field(2_000, ge=1)
    max_bytes: int = Field(200_000_000, ge=1)
    timeout_s: float = Field(900.0, gt=0)
    min_layer_chars: int = Field(50, ge=0, description="fewer characters on a page that holds images: OCR it")
    max_garbage_ratio: float = Field(0.3, ge=0, description="more replacement/control characters than this: OCR it")
    fix_rtl: bool = Field(True, description="restore the reading order of right-to-left text layers")

    @field_validator("ocr_engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        from pipelines.extract.ocr import ENGINES

        if name not in ENGINES:
            raise ValueError(f"expected one of {', '.join(ENGINES)}, got {name!r}")
        return name


class ExtractSettings(Section):
    timeout_s: float = Field(20.0, gt=0, description="per document, in the extractor child")
    max_doc_bytes: int = Field(20_000_000, ge=0)
    max_decompressed_bytes: int = Field(2_000_000_000, ge=0)
    binary_ratio: float = Field(0.02, ge=0)
    split_bytes: int = Field(64_000_000, ge=4096, description="larger JSONL/WARC.gz files are read in ranges "
                             "(smaller ranges, not under 1 MiB, when the inputs would give fewer than 64 units)")
    max_memory_mb: int = Field(2048, ge=0, description="address-space cap of each extractor child (0: none)")
    repeat_memory: int = Field(2048, ge=0, description="each worker remembers the extraction of this many recent "
                               "HTML pages: a byte-identical payload (a page crawled again, or under another URL) "
                               "is not extracted twice (0: off)")
    html: HtmlSettings = HtmlSettings()
    pdf: PdfSettings = PdfSettings()

    @field_validator("max_memory_mb")
    @classmethod
    def _memory(cls, mb: int) -> int:
        if 0 < mb < 256:
            raise ValueError(f"expected 0 (no cap) or at least 256, got {mb}")
        return mb
