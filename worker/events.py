"""Event models: what flows on each Kafka topic.

These models are the public contract (see ``configs/schemas/`` and
``configs/asyncapi.yaml``, generated from them by ``python -m worker schemas``).
Bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2

SourceKind = Literal["seed", "feed", "file"]
TextOrigin = Literal["page", "feed", "file", "record"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, data: bytes | str) -> Any:
        return cls.model_validate(orjson.loads(data))


class Source(_Model):
    """Where a record came from."""

    kind: SourceKind
    name: str = Field(description="feed name from feeds.yaml, or the seed folder's name")
    feed_url: str | None = Field(default=None, description="the feed's URL, for feed records")


class FeedEntry(_Model):
    """What a feed said about an entry (RSS item / Atom entry)."""

    entry_id: str = Field(description="GUID, else canonical link, else hash of title+summary")
    title: str | None = None
    summary: str | None = None
    content: str | None = Field(default=None, description="full content (content:encoded)")
    authors: list[str] = Field(default_factory=list)
    published_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    revision: int = Field(default=1, ge=1, description="1 for a new entry, +1 per content change")


class RawRecord(_Model):
    """A record on ``articles.raw``: one article as a source saw it, not yet cleaned."""

    schema_version: int = SCHEMA_VERSION
    record_id: str = Field(description="unique per accepted record (uuid4 hex)")
    source: Source
    url: str | None = Field(default=None, description="the article's URL, if known")
    path: str | None = Field(default=None, description="file name, for seed/file records")
    content_type: Literal["html", "text"] | None = Field(
        default=None, description="what `body` is; None when there is no body"
    )
    body: str | None = Field(default=None, description="the page, when the source has it")
    entry: FeedEntry | None = None
    received_at: AwareDatetime = Field(default_factory=utcnow)
    attempt: int = Field(default=0, ge=0, description="redeliveries so far (dlq replay bumps it)")


class Evidence(_Model):
    term: str = Field(description="the matched term as it stands in the text")
    field: Literal["title", "text"] = "text"
    start: int = Field(ge=0, description="character offset into the field (title or text)")
    end: int = Field(ge=0)
    sentence: str


class TopicTag(_Model):
    id: str
    label: str
    score: float = Field(ge=0.0, le=1.0)
    iptc: str = Field(description="IPTC Media Topic code, e.g. medtop:20000641")
    evidence: list[Evidence]


class StoryRef(_Model):
    """The story an article belongs to (the same event told by several articles)."""

    id: str = Field(description="the story id: the article id of the story's first article")
    size: int = Field(ge=1, description="articles in the story so far, this one included")
    first_seen: AwareDatetime = Field(description="when the story's first article was seen")
    opened: bool = Field(description="true when this article opened the story")


class EnrichedEvent(_Model):
    """On ``articles.enriched``: every accepted article, full event."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="stable article id: hash of the canonical URL, else of the text")
    url: str | None
    source: Source
    title: str | None
    authors: list[str]
    published_at: AwareDatetime | None
    site_name: str | None
    language: str | None
    text: str
    text_origin: TextOrigin = Field(description="where the text came from: page, feed, file")
    topics: list[TopicTag]
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes")
    fingerprint: str = Field(description="hash of the normalised text")
    revision: int = Field(default=1, ge=1)
    ingested_at: AwareDatetime
    pipeline_version: str
    taxonomy_version: str
    model_version: str | None = Field(
        default=None,
        description="version of the learned topic model beside the rules (null: rules only); "
        "it ends in '+windows' where the model also read long texts by windows",
    )
    story: StoryRef | None = Field(
        default=None,
        description="the story of this article (null when the story store was unavailable)",
    )
    duplicate_of: str | None = Field(
        default=None,
        description="the article id of the first copy, when this text is a republished copy",
    )


class AlertEvent(_Model):
    """On ``alerts.<topic-id>``: small, self-contained."""

    schema_version: int = SCHEMA_VERSION
    article_id: str
    topic: str
    label: str
    score: float
    title: str | None
    url: str | None
    published_at: AwareDatetime | None
    source: Source
    countries: list[str]
    evidence: list[str] = Field(description="the sentences that triggered the topic")
    revision: int = 1
    taxonomy_version: str
    model_version: str | None = Field(
        default=None,
        description="version of the learned topic model (null: rules only; '+windows': it also "
        "read long texts by windows)",
    )
    kind: Literal["first", "update", "article"] = Field(
        default="article",
        description="first: the story's first alert on this topic; update: a later article of "
        "the story that adds a country, a topic or a higher score; article: the topic's rule "
        "is not per story, every article alerts",
    )
    story_id: str | None = Field(default=None, description="the article's story")
    new_countries: list[str] = Field(
        default_factory=list, description="update: the countries the story had not named"
    )
    new_topics: list[str] = Field(
        default_factory=list, description="update: the topics the story had not carried"
    )
    previous_score: float | None = Field(
        default=None, description="update for a higher score: the score alerted before"
    )


def alert_for(event: EnrichedEvent, tag: TopicTag, **extra: Any) -> AlertEvent:
    """The alert for one topic of an enriched event: the event's article, revision, countries,
    versions and story, the topic's score and the sentences of its evidence; ``extra`` sets
    the per-story fields (``kind``, ``new_countries``...)."""
    return AlertEvent(
        article_id=event.id,
        topic=tag.id,
        label=tag.label,
        score=tag.score,
        title=event.title,
        url=event.url,
        published_at=event.published_at,
        source=event.source,
        countries=list(event.countries),
        evidence=list(dict.fromkeys(e.sentence for e in tag.evidence)),
        revision=event.revision,
        taxonomy_version=event.taxonomy_version,
        model_version=event.model_version,
        story_id=event.story.id if event.story is not None else None,
        **extra,
    )


class DeadLetter(_Model):
    """On ``articles.dlq``: a record that could not be processed, and why."""

    schema_version: int = SCHEMA_VERSION
    record_id: str
    stage: Literal[
        "decode", "fetch", "clean", "tag", "dedup", "publish", "poll", "source", "internal"
    ]
    error_class: str
    message: str
    retriable: bool
    attempts: int
    failed_at: AwareDatetime = Field(default_factory=utcnow)
    original: dict[str, Any] = Field(description="the original raw record, as JSON")


EVENT_MODELS: dict[str, type[_Model]] = {
    "raw-record": RawRecord,
    "enriched-event": EnrichedEvent,
    "alert-event": AlertEvent,
    "dead-letter": DeadLetter,
}
