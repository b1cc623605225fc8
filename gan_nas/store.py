"""The run directory: config, journal, state, candidates, best, and a lock.

Layout (the lifecycle of what it holds: ARCHITECTURE.md)::

    RUN_DIR/config.json        resolved config; created once, never rewritten
    RUN_DIR/journal.jsonl      one JSON object per finished evaluation, appended and fsynced
    RUN_DIR/state.json         search state, replaced atomically
    RUN_DIR/candidates/ID/     genome.json and weights
    RUN_DIR/best/              genome.json, generator.keras; replaced as a whole
    RUN_DIR/samples/, tb/      image grids, TensorBoard logs
    RUN_DIR/lock               pid, host and start time of the search writing the directory

Every write is crash-safe: a process killed at any instant leaves either the
old or the new version of each file, never a torn one. Files are written to
a temporary name in the same directory, fsynced, renamed over the target, and
the directory is fsynced (:func:`gan_nas.safe_io.write_atomic`). A journal line is one ``write`` on an ``O_APPEND``
descriptor followed by ``fsync``. Leftover temporaries are ignored by readers
and removed by the next process that takes the lock.

Only the lock holder writes; readers (``generate``, ``report``) open the
directory without locking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gan_nas import safe_io
from gan_nas.config import HalvingConfig
from gan_nas.errors import GanNasError, GenomeError, RunDirError


def json_safe(v: Any) -> Any:
    """``v`` with every NaN or infinite float (also inside dicts and lists) as None: JSON has neither."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v

def relative_path(path: str | Path, root: str | Path) -> str:
    """``path`` as a file inside the run directory ``root`` records it: relative to ``root`` (``..`` where it
    lies outside), both resolved, with forward slashes, so that the run can be moved or copied."""
    return Path(os.path.relpath(Path(path).resolve(), Path(root).resolve())).as_posix()


def seconds_of(records, part: str = "total") -> float:
    """Sum of ``seconds[part]`` (build, train, score or total) over journal records; missing parts count 0."""
    return sum(float((r.get("seconds") or {}).get(part, 0.0)) for r in records)


# A journal record's fields that every reader relies on, and their JSON types.
RECORD_STATUSES = ("ok", "invalid", "diverged", "failed")
# what a search's (or a baseline's) trial is; "policy": sampled by the rl strategy's policy
RECORD_KINDS = ("initial", "random", "policy", "child", "continue", "final")
_RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "generation": (int,), "kind": (str,), "parents": (list,), "genome": (dict,),
    "status": (str,), "params": (dict,), "steps": (int,), "seconds": (dict,),
}
# Counters (generation, steps, ids' numbers) above this are damage, not a real run; JSON's exact integers end here.
MAX_COUNT = 2**53


def check_record(rec: dict[str, Any], where: str) -> None:
    """Raise RunDirError, naming ``where`` and the field, if a journal record is malformed."""
    def bad(field: str, why: str) -> RunDirError:
        return RunDirError(f"{where}: field {field!r} {why}; repair or delete that line and resume "
                           f"(a deleted evaluation is redone)")

    for field, types in _RECORD_FIELDS.items():
        if field not in rec:
            raise bad(field, "is missing")
        v = rec[field]
        if not isinstance(v, types) or isinstance(v, bool):
            raise bad(field, f"must be a JSON {'/'.join('number' if t is int else t.__name__ for t in types)}, "
                             f"got {_short(v)}")
    if not valid_id(rec["id"]):
        raise bad("id", f"is not a candidate id: {rec['id']!r}")
    for field in ("generation", "steps"):
        if not 0 <= rec[field] <= MAX_COUNT:
            raise bad(field, f"must be between 0 and 2**53, got {_short(rec[field])}")
    if rec["status"] not in RECORD_STATUSES:
        raise bad("status", f"must be one of {', '.join(RECORD_STATUSES)}, got {rec['status']!r}")
    if rec["kind"] not in RECORD_KINDS:
        raise bad("kind", f"must be one of {', '.join(RECORD_KINDS)}, got {_short(rec['kind'])}")
    if not all(isinstance(p, str) for p in rec["parents"]):
        raise bad("parents", "must be a list of candidate ids")
    f = rec.get("fitness")
    if f is not None and not _finite_or_inf(f):
        raise bad("fitness", f"must be a number or null, got {_short(f)}")
    for part, v in rec["seconds"].items():
        if not _finite_or_inf(v) or not 0 <= v < math.inf:
            raise bad(f"seconds.{part}", f"must be a non-negative number of seconds, got {_short(v)}")
    for net in ("g", "d"):  # report, compare and selection count them
        v = rec["params"].get(net)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
            raise bad(f"params.{net}", f"must be a whole number of parameters, got {_short(v)}")
    if "total_steps" in rec and (isinstance(rec["total_steps"], bool) or not isinstance(rec["total_steps"], int)
                                 or not 0 <= rec["total_steps"] <= MAX_COUNT):
        raise bad("total_steps", f"must be between 0 and 2**53, got {_short(rec['total_steps'])}")
    metrics = rec.get("metrics", {})
    if not isinstance(metrics, dict):
        raise bad("metrics", f"must be a JSON dict, got {_short(metrics)}")
    for name, v in metrics.items():
        if v is not None and not _finite_or_inf(v):
            raise bad(f"metrics.{name}", f"must be a number or null, got {_short(v)}")
    from gan_nas.genome import GanGenome  # (here: the store needs genomes only to check them)

    try:
        GanGenome.from_dict(rec["genome"])
    except GenomeError as e:
        raise bad("genome", f"is not a genome ({e})") from None


def _finite_or_inf(v: Any) -> bool:
    """A JSON number that is not NaN or -infinity (+infinity stands for a failed candidate's fitness; -infinity
    would rank a damaged line above every candidate) and not a huge int."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= MAX_COUNT if isinstance(v, int) else not math.isnan(v) and v != -math.inf


_TASK_KEYS = {"id", "generation", "kind", "parents", "genome", "steps", "seed", "save_to"}


def check_state_tasks(state: dict[str, Any], where: str | Path, max_steps: int | None = None) -> None:
    """Raise RunDirError if a search's state.json (``where``) holds tasks that would be journaled broken.

    :meth:`gan_nas.scheduler.Scheduler.load_state` (with :meth:`gan_nas.trial.Trial.from_dict`) checks each
    field's type against the journal; this checks, as the file is read, what
    the search would otherwise act on unasked: a pending task whose id is no candidate id (its record
    would make the journal unreadable for good), one id pending twice (journaled twice), an id counter
    behind the pending ids (new candidates would take ids already used), a kind no search makes, and
    ``done``/``stopped`` that are not what a search writes (a ``done`` of "yes" ended the search unfinished),
    a genome that is none (trained, then refused by the journal), and, given ``max_steps`` (the most steps
    the run's config gives a task), a pending task of more steps (10**12 trained without end).
    A baseline's state (``"baseline": true``) has none of these.
    """
    from gan_nas.genome import GanGenome

    if state.get("baseline"):
        return
    fix = "delete it and resume: the search rebuilds it from the journal"

    def bad(field: str, why: str) -> RunDirError:
        return RunDirError(f"{where}: field {field!r} {why}; {fix}")

    if "done" in state and not isinstance(state["done"], bool):
        raise bad("done", f"must be true or false, got {_short(state['done'])}")
    if state.get("stopped") is not None and not isinstance(state["stopped"], str):
        raise bad("stopped", f"must be null or a reason, got {_short(state['stopped'])}")
    pending = state.get("pending")
    tasks = [("pending", t) for t in pending] if isinstance(pending, list) else []
    final = state.get("final")
    if isinstance(final, dict) and isinstance(final.get("task"), dict):
        tasks.append(("final.task", final["task"]))
    seen: set[str] = set()
    numbers = []
    for field, t in tasks:
        if not isinstance(t, dict) or "id" not in t:
            continue  # a type error: Trial.from_dict names it
        cid = t["id"]
        if not valid_id(cid):
            raise bad(f"{field}.id", f"is not a candidate id: {_short(cid)}")
        if field == "pending":
            if cid in seen:
                raise bad("pending.id", f"{cid!r} is pending twice")
            seen.add(cid)
        if "kind" in t and t["kind"] not in RECORD_KINDS:
            raise bad(f"{field}.kind", f"must be one of {', '.join(RECORD_KINDS)}, got {_short(t['kind'])}")
        if isinstance(t.get("genome"), dict):
            try:
                GanGenome.from_dict(t["genome"])
            except GenomeError as e:
                raise bad(f"{field}.genome", f"is not a genome ({e})") from None
        steps = t.get("steps")
        if (field == "pending" and max_steps is not None and isinstance(steps, int) and not isinstance(steps, bool)
                and steps > max_steps):
            raise bad("pending.steps", f"is {_short(steps)}, more than the {max_steps:,} the run's config gives a "
                                       "task (training.steps, training.survivor_steps, halving's rungs)")
        if field == "pending" and cid[1:].isdigit() and _TASK_KEYS <= t.keys():  # (an incomplete task: Trial.from_dict)
            numbers.append(int(cid[1:]))
    next_id = state.get("next_id")
    if isinstance(next_id, int) and not isinstance(next_id, bool) and numbers and next_id <= max(numbers):
        raise bad("next_id", f"is {next_id}, but task c{max(numbers):04d} is pending: new candidates would take "
                             "ids already in use")


def _short(v: Any) -> str:
    """A value for an error message: at most 40 characters of its JSON."""
    try:
        text = json.dumps(v)
    except ValueError:  # an int too long for str()
        return "a number too large"
    return text if len(text) <= 40 else text[:37] + "..."


def valid_id(cid: Any) -> bool:
    """Whether ``cid`` can name a candidate's directory: a plain, non-hidden file name."""
    return (isinstance(cid, str) and bool(cid) and cid not in (".", "..") and "/" not in cid and "\\" not in cid
            and not cid.startswith(".") and "\0" not in cid)


CONFIG = "config.json"
JOURNAL = "journal.jsonl"
STATE = "state.json"
DATASET = "dataset.json"  # the content fingerprint of the data the journal's scores were measured on
LOCK = "lock"
BEST = "best"
_BEST_TMP = "best.tmp"  # a best/ being filled; complete once best.old exists beside it
_BEST_OLD = "best.old"  # the previous best/, moved aside during the swap


def is_pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (zombies count as dead).

    Args:
        pid: A process id.

    Returns:
        True if the process exists and has not exited.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    proc = _proc_stat(pid)
    return proc is None or proc[0] != "Z"


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc, or None where unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _encode(obj: Any) -> bytes:
    # allow_nan: failed candidates carry fitness = inf, which Python's json reads back as Infinity.
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


class RunStore:
    """A run directory on disk.

    Make one with :meth:`create` (a new run) or :meth:`open` (an existing
    one), then take the lock before writing::

        store = RunStore.create(run_dir, cfg.to_json())
        with store.locked():
            store.append({"id": "g0-0", "status": "ok", ...})
            store.write_state({...})

    Attributes:
        root: The run directory.
    """

    def __init__(self, root: Path) -> None:
        """Wrap an already checked run directory; use :meth:`create` or :meth:`open`."""
        self.root = root
        self._lock_token: str | None = None

    # -- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: str | Path, config_json: str) -> RunStore:
        """Start a new run directory holding ``config_json``.

        Args:
            run_dir: A path that does not exist yet or is an empty directory.
            config_json: The resolved config, as JSON text.

        Returns:
            The store, not locked yet.

        Raises:
            RunDirError: The path is a file, is not writable, or already holds files.
        """
        root = Path(run_dir)
        if root.exists() and not root.is_dir():
            raise RunDirError(f"run dir {root} is a file, not a directory; choose another --run-dir")
        json.loads(config_json)  # a programming error, not user input, if this fails
        try:
            if root.is_dir() and any(root.iterdir()):
                if os.path.lexists(root / CONFIG):
                    raise RunDirError(f"run dir {root} already holds a run; use --resume or another --run-dir")
                first = sorted(p.name for p in root.iterdir())[0]  # a folder of the user's: not a run to resume
                raise RunDirError(f"run dir {root} is not empty (it holds {first!r}) and holds no run; choose a new "
                                  "or empty folder")
            root.mkdir(parents=True, exist_ok=True)
            for sub in ("candidates", "samples", "tb"):
                (root / sub).mkdir(exist_ok=True)
            tmp = safe_io.temp_name(root / CONFIG)
            try:
                tmp.write_bytes(config_json.rstrip("\n").encode() + b"\n")
                safe_io.fsync_path(tmp)
                os.link(tmp, root / CONFIG)  # not a rename: it fails if another process created the run first
            except FileExistsError:
                raise RunDirError(
                    f"run dir {root} already holds a run; use --resume or another --run-dir") from None
            finally:
                tmp.unlink(missing_ok=True)
            safe_io.fsync_path(root)
        except OSError as e:  # unwritable, under a file, on a read-only or special file system (/proc)
            raise RunDirError(f"run dir {root} cannot be created: {e.strerror or e}; choose another --run-dir"
                              ) from None
        return cls(root)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing run directory (to resume it or to read it).

        Args:
            run_dir: A directory made by :meth:`create`.

        Returns:
            The store, not locked.

        Raises:
            RunDirError: The directory is missing, is not a run directory, or its config.json is corrupt.
        """
        root = Path(run_dir)
        if not root.exists():
            raise RunDirError(f"run dir {root} does not exist; check the path (a new search needs no --resume)")
        if not root.is_dir():
            raise RunDirError(f"run dir {root} is a file, not a run directory")
        if not os.path.lexists(root / CONFIG):
            raise RunDirError(f"{root} is not a gan-nas run directory: it has no {CONFIG}")
        store = cls(root)
        store.config_json()  # parse now, so a damaged run fails early
        return store

    def config_json(self) -> str:
        """The run's resolved config as JSON text.

        Raises:
            RunDirError: config.json is unreadable or not a JSON object.
        """
        path = self.root / CONFIG
        self.read_json(path, expect=dict)
        return safe_io.read_text(path)

    # -- the lock -----------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the run directory for this process; a no-op if this store holds it already.

        A lock left by a dead process on this host (its pid gone, or reused by
        a process that started later) is reported on stderr and taken over.
        Taking over is serialised by an ``flock`` on the directory, so two
        processes racing for a stale lock cannot both win.

        Raises:
            RunDirError: A live process (or one on another host) holds the lock.
        """
        if self._lock_token is not None:
            return
        path = self.root / LOCK
        token = secrets.token_hex(8)
        proc = _proc_stat(os.getpid())
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "proc_start": proc[1] if proc else None,
            "token": token,
        }
        guard = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._remove_stale_lock(path)  # raises if the holder lives
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except PermissionError as e:
                raise RunDirError(f"run dir {self.root} cannot be written: {e.strerror}") from None
            try:
                os.write(fd, _encode(info))
                os.fsync(fd)
            finally:
                os.close(fd)
            safe_io.fsync_path(self.root)
        finally:
            os.close(guard)  # releases the flock
        self._lock_token = token
        try:
            self._recover()
        except BaseException:
            self.unlock()  # a damaged run directory is refused, not left locked
            raise

    def _remove_stale_lock(self, path: Path) -> None:
        """Delete a lock whose holder is dead; raise RunDirError naming a live holder."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode):  # gan-nas writes a plain file; never delete what a user put there
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise RunDirError(f"{path} is {what}, not a lock gan-nas wrote; remove it if no search is running, "
                              f"then resume")
        try:
            info = safe_io.read_json(path)
            pid, host = int(info["pid"]), str(info["host"])
            if not 0 < pid < 2**31:
                raise ValueError(f"pid {pid} is not a process id")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            # Writers hold the flock from creation to fsync, so a torn lock file means its writer died.
            print(f"warning: removing unreadable lock file {path}", file=sys.stderr)
            path.unlink(missing_ok=True)
            return
        if host == socket.gethostname():
            proc = _proc_stat(pid)
            reused = proc is not None and info.get("proc_start") not in (None, proc[1])
            if not is_pid_alive(pid) or reused:
                print(f"warning: removing stale lock left by dead pid {pid}", file=sys.stderr)
                path.unlink(missing_ok=True)
                return
        raise RunDirError(
            f"run dir {self.root} is locked by pid {pid} on {host} (started {info.get('started', '?')}); "
            f"another search is writing it. If no search is running, delete {path}")

    def unlock(self) -> None:
        """Release the lock if this store holds it."""
        if self._lock_token is None:
            return
        path = self.root / LOCK
        try:
            if safe_io.read_json(path).get("token") == self._lock_token:
                path.unlink()
                safe_io.fsync_path(self.root)
        except (OSError, ValueError, AttributeError):
            pass  # removed or replaced by someone else: nothing of ours to release
        self._lock_token = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunStore]:
        """Hold the lock for the ``with`` block; see :meth:`lock`."""
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    def _recover(self) -> None:
        """Finish an interrupted best/ swap and delete leftover temporaries (lock held).

        The journal and state.json are read back first: a damaged run is refused before anything in it
        changes (a best/ swap finished, temporaries deleted), so that a copy kept for repair stays whole.
        """
        self._parse_journal(self._journal_bytes(), warn_torn=False)
        self.read_state()
        self._check_folders()
        self._recover_best()
        self._drop_torn_journal_tail()
        for d in (self.root, self.root / "candidates", *self.root.glob("candidates/*")):
            for p in d.glob(f".*{safe_io.TMP_MARK}*") if d.is_dir() else ():
                if p.is_file():
                    p.unlink(missing_ok=True)

    # -- journal and state --------------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

    def append(self, record: dict[str, Any]) -> None:
        """Append one record to the journal as one line, durably.

        Args:
            record: A JSON-able dict (one finished evaluation).
        """
        check_record(record, f"{self.journal_path}: the record to append")  # never write a line no reader takes
        line = json.dumps(record, sort_keys=True).encode() + b"\n"
        fd = os.open(self.journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a hand-edited journal lost its final newline
            while line:
                line = line[os.write(fd, line):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def journal(self) -> list[dict[str, Any]]:
        """Every journal record, in the order written; empty if there is no journal yet.

        A last line that is cut off (no newline after it, not valid JSON: a write
        interrupted by a crash) is left out with a warning; the next search to take
        the lock removes it, and its evaluation is redone. Corruption anywhere else
        is an error.

        Raises:
            RunDirError: A line is not a valid record; the message gives the line, the field and a fix.
        """
        return self._parse_journal(self._journal_bytes(), warn_torn=True)

    def _parse_journal(self, data: bytes, warn_torn: bool) -> list[dict[str, Any]]:
        """The records in the journal's bytes ``data``; see :meth:`journal`."""
        lines = data.split(b"\n")
        records, seen = [], set()
        for lineno, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            where = f"{self.journal_path}:{lineno}"
            try:
                rec = safe_io.parse_json(raw)
                if not isinstance(rec, dict):
                    raise ValueError(f"a JSON {type(rec).__name__}, not an object")
            except (ValueError, UnicodeDecodeError) as e:
                if lineno == len(lines):  # no newline after it: the write was cut off
                    if warn_torn:
                        print(f"warning: {where}: ignoring a cut-off last journal line (a write interrupted by "
                              f"a crash); its evaluation will be redone", file=sys.stderr)
                    continue
                raise RunDirError(
                    f"{where}: corrupt journal line ({e}); repair or delete that line and resume, "
                    f"a deleted evaluation will be redone") from None
            check_record(rec, where)
            if rec["id"] in seen:
                raise RunDirError(f"{where}: field 'id': {rec['id']!r} is journaled twice; delete one of the two "
                                  f"lines and resume")
            unknown = [p for p in rec["parents"] if p not in seen]
            if unknown:  # a parent finished before its child was proposed, so its line comes first
                raise RunDirError(f"{where}: field 'parents' names {unknown[0]!r}, which no earlier journal line "
                                  f"holds; repair or delete that line and resume")
            seen.add(rec["id"])
            records.append(rec)
        return records

    def _journal_bytes(self) -> bytes:
        """The journal's bytes; empty if there is none yet. RunDirError if it is unreadable or not a file."""
        try:
            return safe_io.read_bytes(self.journal_path, safe_io.MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            return b""
        except OSError as e:
            raise RunDirError(f"{self.journal_path} cannot be read: {e.strerror or e}; restore it from a copy "
                              f"of the run") from None

    def _drop_torn_journal_tail(self) -> None:
        """Cut a last journal line that a crash left unfinished, so that appends start on a clean line.

        The rest of the journal is checked first (:meth:`journal`): a damaged run is refused without any
        change, rather than losing its last line before the damage elsewhere is found.
        """
        data = self._journal_bytes()
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if not tail.strip():
            return
        try:
            if isinstance(safe_io.parse_json(tail), dict):
                return  # complete, only its newline is missing (a hand edit): append() adds one
        except ValueError:  # UnicodeDecodeError included
            pass
        self._parse_journal(data, warn_torn=False)  # raises on damage before the tail
        lineno = data.count(b"\n") + 1
        print(f"warning: {self.journal_path}:{lineno}: removing a cut-off last journal line (a write "
              f"interrupted by a crash); its evaluation will be redone", file=sys.stderr)
        with open(self.journal_path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically with ``state``."""
        self.write_json_atomic(self.root / STATE, state)

    def check_dataset(self, name: str, fingerprint: str, sizes: dict[str, int], record: bool = True) -> None:
        """Refuse data other than what this run was measured on; record it where nothing is recorded yet.

        The feature network and the references are keyed by the data's content, so a changed
        dataset file scored the rest of a resumed run against other statistics, silently.
        (Runs made before dataset.json existed record the data they are resumed with.)

        Args:
            name: how messages name the dataset (not recorded: a path in it would tie the run to one machine).
            fingerprint: the dataset's content fingerprint (``data.Dataset.fingerprint``).
            sizes: the split sizes, recorded beside it for a reader.
            record: write dataset.json where there is none (a search does; a reader of the run need not).

        Raises:
            RunDirError: dataset.json records other data, or is damaged.
        """
        path = self.root / DATASET
        if not os.path.lexists(path):
            if record:
                self.write_json_atomic(path, {"fingerprint": fingerprint, **sizes})
            return
        fix = "restore it from a copy of the run, or delete it to accept the data that is loaded now"
        recorded = self.read_json(path, expect=dict, fix=fix)
        if not isinstance(recorded.get("fingerprint"), str):
            raise RunDirError(f"{path} is corrupt: it has no fingerprint; {fix}")
        if recorded["fingerprint"] != fingerprint:
            raise RunDirError(
                f"the dataset {name!r} is not the one {self.root} was measured on (content fingerprint "
                f"{fingerprint}, recorded {recorded['fingerprint']}): its scores would not compare; "
                f"restore that data or start a new run")

    def require_search(self, doing: str) -> None:
        """Raise RunDirError if this is a ``gan-nas baseline`` directory (its state says so), not a search.

        ``compare`` took a baseline directory for the search to compare and trained a DCGAN
        against the DCGAN inside it.
        """
        state = self.read_state()
        if state is not None and state.get("baseline"):
            raise RunDirError(f"{self.root} is a DCGAN baseline directory, not a search run; {doing} the search "
                              "run directory instead (the baseline's own scores are in its journal)")

    def read_state(self) -> dict[str, Any] | None:
        """The last state written, or None if there is none yet.

        Raises:
            RunDirError: state.json is corrupt.
        """
        path = self.root / STATE
        if not path.exists():
            return None
        # the journal holds everything state.json summarises
        state = self.read_json(path, expect=dict, fix="delete it and resume: the search rebuilds it from the journal")
        check_state_tasks(state, path, self._max_task_steps())
        return state

    def _max_task_steps(self) -> int | None:
        """The most steps the run's config gives a search's task, or None if config.json says nothing
        readable about it (its own readers report that)."""
        try:
            cfg = safe_io.parse_json(self.config_json())
            training = cfg.get("training") or {}
            steps = [training.get("steps"), training.get("survivor_steps")]
            if (cfg.get("search") or {}).get("strategy") == "halving":
                known = {f.name for f in dataclasses.fields(HalvingConfig)}
                halving = HalvingConfig(**{k: v for k, v in (cfg.get("halving") or {}).items() if k in known})
                steps.append(halving.longest_trial_steps())
        except (GanNasError, OSError, ValueError, AttributeError, TypeError):
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in steps):
            return None
        return max(steps)

    # -- files ----------------------------------------------------------------------------------

    def write_json_atomic(self, path: str | Path, obj: Any) -> None:
        """Write ``obj`` as JSON to ``path`` so that a crash leaves the old file or the new one.

        Args:
            path: Target file; its directory must exist.
            obj: A JSON-able value.
        """
        safe_io.write_bytes_atomic(path, _encode(obj))

    def read_json(self, path: str | Path, expect: type | None = None,
                  fix: str = "restore it or start a new run") -> Any:
        """Read a JSON file of the run, such as a candidate's genome.json.

        Args:
            path: The file.
            expect: If given, the type the top-level value must have.

        Raises:
            RunDirError: The file is missing, unreadable or not valid JSON (of type ``expect``).
        """
        path = Path(path)
        try:
            value = safe_io.read_json(path)
        except FileNotFoundError:
            raise RunDirError(f"{path} is missing; the run directory is incomplete") from None
        except OSError as e:
            raise RunDirError(f"{path} cannot be read: {e.strerror or e}; {fix}") from None
        except ValueError as e:
            raise RunDirError(f"{path} is corrupt ({e}); {fix}") from None
        if expect is not None and not isinstance(value, expect):
            raise RunDirError(f"{path} is corrupt: expected a JSON {expect.__name__}, got {type(value).__name__}; "
                              f"{fix}")
        return value

    def candidate_dir(self, cid: str, create: bool = True) -> Path:
        """The directory of candidate ``cid``.

        Args:
            cid: A candidate id (a plain file name).
            create: Create the directory if missing; if False, a missing one is an error.

        Raises:
            RunDirError: The id is not a plain name, or (create=False) no such candidate exists.
        """
        if not valid_id(cid):
            raise RunDirError(f"candidate id {cid!r} is not valid; ids are listed in {self.journal_path}")
        path = self.root / "candidates" / cid
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise RunDirError(f"run dir {self.root} has no candidate {cid!r}; ids are listed in {self.journal_path}")
        return path

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def tb_dir(self) -> Path:
        return self.root / "tb"

    def best_dir(self) -> Path | None:
        """The directory holding the best candidate, or None if none was published.

        Safe to call while a search publishes: in the instant between the two
        renames of :meth:`publish_best` it returns the complete new copy.
        """
        for name in (BEST, _BEST_TMP, BEST):  # best again: the swap may finish while we look
            if (self.root / name).is_dir() and (name == BEST or (self.root / _BEST_OLD).exists()):
                return self.root / name
        return None

    def publish_best(self, fill: Callable[[Path], None]) -> None:
        """Replace RUN_DIR/best with the files that ``fill`` writes, as a whole.

        ``fill(tmp_dir)`` writes genome.json, generator.keras, ... into a fresh
        directory; its files are fsynced, then it is swapped in for best/ by two
        renames. A crash at any point leaves the old best/ or the new one (see
        :meth:`_recover`, run when the lock is next taken).

        Args:
            fill: Writes the new best's files into the directory it is given.
        """
        best, tmp, old = self.root / BEST, self.root / _BEST_TMP, self.root / _BEST_OLD
        self._recover_best()
        tmp.mkdir()
        try:
            fill(tmp)
            for dirpath, _, files in os.walk(tmp):
                for name in files:
                    safe_io.fsync_path(os.path.join(dirpath, name))
                safe_io.fsync_path(Path(dirpath))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if best.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(best, old)  # from here until best exists again, best.tmp is the complete copy
            safe_io.fsync_path(self.root)
        os.rename(tmp, best)
        safe_io.fsync_path(self.root)
        shutil.rmtree(old, ignore_errors=True)

    def _check_folders(self) -> None:
        """Raise RunDirError if a folder the search writes into is something else (a file, a broken link).

        Found only when a generation ended, after its training: ``tb`` a file was a TensorFlow traceback,
        ``samples``, ``best`` or ``best.tmp`` a file an error with the generation's evaluations journaled.
        """
        for name in ("candidates", "samples", "tb", BEST, _BEST_TMP, _BEST_OLD):
            p = self.root / name
            if os.path.lexists(p) and not p.is_dir():
                what = "a file" if p.is_file() else "a broken link" if p.is_symlink() and not p.exists() \
                    else "not a folder"
                raise RunDirError(f"{p} is {what}, where the run keeps a folder; move it out of the run "
                                  "directory and resume")

    def _recover_best(self) -> None:
        """Finish a best/ swap cut off by a crash; drop a half-filled best.tmp."""
        best, tmp, old = self.root / BEST, self.root / _BEST_TMP, self.root / _BEST_OLD
        if old.exists():
            if not best.exists():
                # Killed between the two renames of publish_best: best.tmp is complete.
                os.rename(tmp if tmp.exists() else old, best)
                safe_io.fsync_path(self.root)
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
