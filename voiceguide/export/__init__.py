"""Write a session's files: the MP3 with its ID3v2.3 tags, and sidecars, each atomically.

Every file is written into a temporary file beside its target and moved into
place only when complete, so a failed or interrupted build keeps the previous
session intact and never leaves a partial file. Chapters, lyrics and sidecars
are all made from the timeline, so they agree with each other and the sound.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, SYLT, TALB, TCON, TIT2, TPE1, TSSE, USLT, CTOCFlags

from voiceguide import __version__
from voiceguide.errors import AudioError
from voiceguide.export import cover as covers
from voiceguide.export import leftovers
from voiceguide.plan.timeline import Timeline
from voiceguide.routine.phrases import id3_language
from voiceguide.units import milliseconds


@contextlib.contextmanager
def atomic(target: Path, texts: Mapping[Path, str] | None = None) -> Iterator[Path]:
    """A temporary file beside ``target`` to write the session into; when the block ends without an error, it
    is moved into place together with ``texts`` (sidecars: their contents by path), see replace_together.
    Otherwise it is removed, and every file stays as it was.

    First, what killed builds left (beside these files, and in the temporary folder) is cleared."""
    texts = dict(texts or {})
    for path in (target, *texts):
        if path.is_dir():
            raise AudioError(f"cannot write {path}: it is a folder")
    leftovers.clear_folders()
    temp: Path | None = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            leftovers.clear_parts([target, *texts])
            temp = _temporary(target)
        except OSError as error:
            raise AudioError(f"cannot write {target}: {error.strerror or error}") from None
        yield temp
        replace_together(texts, {target: temp})
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def replace_together(texts: Mapping[Path, str], made: Mapping[Path, Path] | None = None) -> None:
    """Replace several files at once: ``texts`` (contents by path) and ``made`` (temporary files already
    written, by the path each replaces). Every text is written to a temporary file beside its path and every
    file synced before the first is moved into place, so that a full disk or a failed write replaces none of
    them (AudioError); all temporary files are removed either way."""
    temps = dict(made or {})
    written: Path | None = None
    try:
        for written in temps:
            with open(temps[written], "rb+") as file:
                os.fsync(file.fileno())
        for written, text in texts.items():
            temps[written] = _temporary(written)
            with open(temps[written], "w", encoding="utf-8", newline="\n") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
        mode = 0o644 & ~_umask()
        for written in temps:
            os.chmod(temps[written], mode)
        # The texts (sidecars) first, the session last: a player that sees the new MP3 has its sidecars too.
        for written in [*texts, *(made or {})]:
            os.replace(temps.pop(written), written)
    except OSError as error:
        raise AudioError(f"cannot write {written}: {error.strerror or error}") from None
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    for folder in {path.parent for path in [*texts, *(made or {})]}:
        _sync_folder(folder)


def _temporary(target: Path) -> Path:
    """A new empty file beside ``target``, named so that a later build knows whether its writer still runs."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=leftovers.part_prefix(target), suffix=leftovers.PART)
    os.close(handle)
    return Path(name)


def _sync_folder(folder: Path) -> None:
    """Make the moves into ``folder`` durable, where the system lets a folder be synced."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # not here (Windows): the files are in place, only perhaps not yet on the disk
    finally:
        os.close(handle)


def tags(timeline: Timeline, cover: bytes) -> bytes:
    """The session's ID3v2.3 tag, as the bytes that begin its file: made first and written at the start, since
    added to a finished file they would move every byte of it (80 MB for three hours)."""
    tags = ID3()
    lang = _language(timeline)
    tags.add(TIT2(encoding=3, text=timeline.title))
    tags.add(TPE1(encoding=3, text="voiceguide"))
    tags.add(TALB(encoding=3, text="voiceguide sessions"))
    tags.add(TCON(encoding=3, text="Speech"))
    tags.add(TSSE(encoding=3, text=f"voiceguide {__version__}"))
    if timeline.description:
        tags.add(COMM(encoding=3, lang=lang, desc="", text=timeline.description))
    # Ids that sort as the chapters follow one another (chp01 before chp10), for readers that sort by id.
    ids = [f"chp{number:0{len(str(len(timeline.steps)))}d}" for number in range(len(timeline.steps))]
    tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                  sub_frames=[TIT2(encoding=3, text="Steps")]))
    for chapter_id, step in zip(ids, timeline.steps):
        # Offsets 0xFFFFFFFF: players seek by time, which the CBR file makes exact.
        tags.add(CHAP(element_id=chapter_id, start_time=milliseconds(step.start), end_time=milliseconds(step.end),
                      start_offset=0xFFFFFFFF, end_offset=0xFFFFFFFF, sub_frames=[TIT2(encoding=3, text=step.title)]))
    spoken = lyrics(timeline)
    tags.add(SYLT(encoding=3, lang=lang, format=2, type=1, desc="", text=[(text, ms) for ms, _, text in spoken]))
    tags.add(USLT(encoding=3, lang=lang, desc="", text="\n".join(text for _, _, text in spoken)))
    tags.add(APIC(encoding=3, mime=covers.mime(cover), type=3, desc="Cover", data=cover))
    # ID3v2.3: the version phones and car stereos read most reliably.
    written = io.BytesIO()
    tags.save(written, v2_version=3)
    return _chapters_in_order(written.getvalue())


def _chapters_in_order(tag: bytes) -> bytes:
    """The ID3v2.3 tag with its CHAP frames in time order, right after the table of contents.

    mutagen writes frames shortest first, so chapters came out as their titles'
    lengths had it; players that read CHAP frames without the table of contents
    (ffprobe, some car stereos) listed them so. Only the frames' order changes.
    """
    flags, size = tag[5], int.from_bytes(tag[6:10], "big")
    size = sum(((size >> (8 * i)) & 0x7F) << (7 * i) for i in range(4))  # a syncsafe integer
    if tag[:4] != b"ID3\x03" or flags & 0xC0:  # unsynchronised or with an extended header: not as mutagen writes
        return tag
    body, position, frames = tag[10 : 10 + size], 0, []
    while position + 10 <= len(body) and body[position] != 0:
        end = position + 10 + int.from_bytes(body[position + 4 : position + 8], "big")
        frames.append(body[position:end])
        position = end
    chapters = sorted((frame for frame in frames if frame[:4] == b"CHAP"), key=_chapter_start)
    ordered = []
    for frame in frames:
        if frame[:4] != b"CHAP":
            ordered.append(frame)
        if frame[:4] == b"CTOC":
            ordered += chapters
    if len(ordered) != len(frames):  # no table of contents to follow: chapters where the first one was
        return tag
    return tag[:10] + b"".join(ordered) + body[position:] + tag[10 + size :]


def _chapter_start(frame: bytes) -> int:
    """A CHAP frame's start time: the first number after its element id."""
    start = frame.index(b"\x00", 10) + 1
    return int.from_bytes(frame[start : start + 4], "big")


def _language(timeline: Timeline) -> str:
    """The ID3 code (ISO 639-2) of the language the session's lines were given (`language:`); English if none."""
    given = next((e.line.voice.language for e in timeline.events if e.line is not None and e.line.voice.language), None)
    return id3_language(given) if given else "eng"


def lyrics(timeline: Timeline) -> list[tuple[int, int, str]]:
    """Every spoken line, cues included: (start ms, end ms, text), in order."""
    return [(milliseconds(e.start), milliseconds(e.end), e.line.text) for e in timeline.events if e.line is not None]



def write_text(target: Path, text: str) -> None:
    """Write one sidecar file atomically."""
    replace_together({target: text})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
