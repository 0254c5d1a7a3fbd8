# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File-system access that is safe in folders users can write (stdlib only, Linux).

ledgerguard runs as root inside client folders whose owners may be hostile (or compromised): any name may be swapped
for a symbolic link, a FIFO or a device between a check and a use. The rules, one helper each:

- Directories are opened one component at a time with ``O_DIRECTORY|O_NOFOLLOW`` (:func:`open_dir`,
  :func:`open_path`), and everything below is done relative to the directory's file descriptor (``dir_fd=``:
  ``openat``, ``linkat``, ``renameat``, ``mkdirat``), never by a path that could be re-resolved through a link.
- Files are read only when they are regular files: checked with ``lstat``, opened ``O_NOFOLLOW|O_NONBLOCK`` and
  confirmed with ``fstat`` (:func:`open_regular`; a FIFO or a device never blocks or is read).
- Writes never replace an existing name: :func:`rename_noreplace`, :func:`free_name`, :func:`copy_file` (temporary
  name in the destination folder, ``fsync``, then an exclusive link to the final name).
- Folders of our own (staging, quarantine, the incident's work folder) are created exclusively, owned by root,
  mode 0700, and verified with ``lstat``; an existing folder that is not like that is refused (:func:`private_dir`).

Every function raises ``OSError`` (with ``filename`` set where a name is involved); :class:`NotRegularFile` and
:class:`NotPrivate` are ``OSError`` subclasses with a message meant for the operator.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import secrets
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
RENAME_NOREPLACE = 1
AT_FDCWD = -100
TEMP_PREFIX = ".ledgerguard-tmp-"

__all__ = [
    "NotPrivate",
    "NotRegularFile",
    "copy_file",
    "file_kind",
    "free_name",
    "lstat",
    "make_dir",
    "make_path",
    "open_dir",
    "open_path",
    "open_regular",
    "private_dir",
    "rename_noreplace",
    "sha256_fd",
    "why_not_private",
]


class NotRegularFile(OSError):
    """The name is not (or stopped being) a regular file: a FIFO, a device, a socket, a link or a folder."""


class NotPrivate(OSError):
    """A folder ledgerguard must own (root, mode 0700, not a link) exists and is not like that."""


def file_kind(mode: int) -> str:
    """A short word for the type in ``st_mode``: file, directory, symlink, fifo, socket, char device, block device."""
    for test, word in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "char device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return word
    return "unknown"


def lstat(name: str, dir_fd: int) -> os.stat_result | None:
    """``lstat`` of ``name`` in the folder ``dir_fd``; None when nothing (not even a dangling link) has that name."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open the folder ``name`` (one component, relative to ``dir_fd``; or an absolute path when ``dir_fd`` is None,
    whose last component only is not followed) with ``O_DIRECTORY|O_NOFOLLOW``. A symbolic link raises ``ELOOP``
    ("is a symbolic link"), anything else that is not a folder ``ENOTDIR``. The caller closes the descriptor."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:
        # Linux answers ENOTDIR for a link opened O_DIRECTORY|O_NOFOLLOW: say which it is.
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "is a symbolic link (never followed)", name) from None
        raise


def open_path(path: str) -> int:
    """Open the absolute folder ``path`` component by component from ``/``, following no symbolic link at all
    (``ELOOP`` names the component that is a link). The caller closes the descriptor."""
    return _walk(path, open_dir)


def _walk(path: str, step) -> int:
    """Open the absolute folder ``path`` from ``/`` one component at a time with ``step(name, dir_fd) -> fd`` (an
    error names the path up to the component that failed)."""
    if not os.path.isabs(path):
        raise OSError(errno.EINVAL, "not an absolute path", path)
    fd = os.open("/", DIR_FLAGS)
    done = "/"
    try:
        for part in [p for p in os.path.normpath(path).split("/") if p]:
            done = os.path.join(done, part)
            try:
                nxt = step(part, fd)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, done) from None
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(name: str | bytes, dir_fd: int | None = None, noatime: bool = False) -> tuple[int, os.stat_result]:
    """Open ``name`` (relative to ``dir_fd``, or a path when ``dir_fd`` is None) for reading only if it is a regular
    file: ``lstat`` first (a FIFO, device node or socket is never opened: opening a FIFO can block or wake a writer,
    opening a device can act on it), then ``O_NOFOLLOW|O_NONBLOCK`` (a link or a FIFO swapped in meanwhile is neither
    followed nor blocks), then ``fstat`` must agree (the same regular file). ``noatime``: ``O_NOATIME`` where the
    kernel allows it (files we do not own: retried without). Returns ``(fd, fstat)``; raises :class:`NotRegularFile`
    otherwise, or the ``OSError`` of the system call. The caller closes the descriptor.

    The collection's one helper for this (hashing, damage sampling, the swap, ledgers)."""
    before = os.lstat(name, dir_fd=dir_fd)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({file_kind(before.st_mode)}): not opened", name)
    flags = FILE_FLAGS | (getattr(os, "O_NOATIME", 0) if noatime else 0)
    try:
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except PermissionError:
            if flags == FILE_FLAGS:
                raise
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)  # O_NOATIME is refused for files we do not own
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise NotRegularFile(
                exc.errno, "not a regular file (replaced while being opened): not opened", name
            ) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(
            errno.EINVAL, f"not a regular file ({file_kind(st.st_mode)} swapped in after the check)", name
        )
    if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "replaced by another file while it was opened", name)
    return fd, st


def sha256_fd(fd: int, sample_bytes: int = 0) -> tuple[str, bytes]:
    """sha256 of an open file from its start, and its first ``sample_bytes`` bytes (one read of the file)."""
    digest = hashlib.sha256()
    sample = bytearray()
    offset = 0
    while True:
        block = os.pread(fd, 1 << 20, offset)
        if not block:
            break
        if len(sample) < sample_bytes:
            sample += block[: sample_bytes - len(sample)]
        digest.update(block)
        offset += len(block)
    return digest.hexdigest(), bytes(sample)


def make_dir(name: str, dir_fd: int, mode: int = 0o700) -> tuple[int, bool]:
    """Open the folder ``name`` in ``dir_fd``, creating it (``mkdirat``, ``mode``) when nothing has that name.
    Returns ``(fd, created)``; a link or a non-folder under that name raises ``ELOOP`` / ``ENOTDIR``."""
    created = False
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
        created = True
    except FileExistsError:
        pass
    return open_dir(name, dir_fd), created


def free_name(dir_fd: int, name: str) -> str:
    """``name``, or the first of ``name.1``, ``name.2``, ... that nothing (not even a dangling link) has in
    ``dir_fd``: an earlier file is never replaced."""
    candidate, n = name, 0
    while lstat(candidate, dir_fd) is not None:
        n += 1
        candidate = f"{name}.{n}"
    return candidate


_LIBC = None


def _renameat2(src_dfd: int, src: str, dst_dfd: int, dst: str, flags: int) -> None:
    global _LIBC  # pylint: disable=global-statement
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    func = getattr(_LIBC, "renameat2", None)
    if func is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if func(src_dfd, os.fsencode(src), dst_dfd, os.fsencode(dst), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src, None, dst)


def rename_noreplace(src_dfd: int, src: str, dst_dfd: int, dst: str) -> None:
    """Move ``src`` (in ``src_dfd``) to ``dst`` (in ``dst_dfd``) without ever replacing ``dst``: ``renameat2`` with
    ``RENAME_NOREPLACE``; where the file system lacks it, a hard link then unlink (files, links) or a checked rename
    (folders). ``EEXIST`` when ``dst`` exists, ``EXDEV`` across file systems."""
    try:
        _renameat2(src_dfd, src, dst_dfd, dst, RENAME_NOREPLACE)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL):
            raise
    st = os.stat(src, dir_fd=src_dfd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        if lstat(dst, dst_dfd) is not None:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
        os.rename(src, dst, src_dir_fd=src_dfd, dst_dir_fd=dst_dfd)
        return
    os.link(src, dst, src_dir_fd=src_dfd, dst_dir_fd=dst_dfd, follow_symlinks=False)
    os.unlink(src, dir_fd=src_dfd)


def copy_file(src_dfd: int, src: str, dst_dfd: int, dst: str) -> str:
    """Copy the regular file ``src`` to the new name ``dst`` (another file system): the bytes go to a temporary name
    in the destination folder, get the source's owner, mode and times, are ``fsync``-ed, and only then take the name
    ``dst`` with an exclusive link (an existing ``dst`` is never replaced: ``EEXIST``). A failure part-way (disk
    full, a kill) leaves no partial file under ``dst``; the temporary file is removed. Returns the copy's sha256."""
    src_fd, st = open_regular(src, src_dfd)
    tmp = f"{TEMP_PREFIX}{secrets.token_hex(6)}"
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_dfd)
        try:
            digest = hashlib.sha256()
            offset = 0
            while True:
                block = os.pread(src_fd, 1 << 20, offset)
                if not block:
                    break
                view = memoryview(block)
                while view:
                    view = view[os.write(out, view) :]
                digest.update(block)
                offset += len(block)
            os.fchown(out, st.st_uid, st.st_gid)
            os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(out)
        finally:
            os.close(out)
        os.link(tmp, dst, src_dir_fd=dst_dfd, dst_dir_fd=dst_dfd, follow_symlinks=False)
        os.fsync(dst_dfd)
        return digest.hexdigest()
    finally:
        os.close(src_fd)
        try:
            os.unlink(tmp, dir_fd=dst_dfd)
        except FileNotFoundError:
            pass


def why_not_private(st: os.stat_result, uid: int | None = None) -> str | None:
    """Why ``st`` (an ``lstat``/``fstat`` result) is not a folder of ours - a folder, not a link, owned by ``uid``
    (default: the effective uid), mode 0700 - or None when it is."""
    uid = os.geteuid() if uid is None else uid
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"it is a {file_kind(st.st_mode)}, not a folder"
    if st.st_uid != uid:
        return f"it is owned by uid {st.st_uid}, not {uid}"
    if stat.S_IMODE(st.st_mode) != 0o700:
        return f"its mode is {stat.S_IMODE(st.st_mode):04o}, not 0700"
    return None


def private_dir(path: str, create: bool = True, uid: int | None = None) -> tuple[int | None, bool]:
    """Open (creating it when ``create``) the folder ``path`` that only root may use: its parent is opened with
    :func:`open_path` (no link followed), the folder is created with an exclusive ``mkdirat`` mode 0700, and an
    existing one is accepted only when ``lstat`` shows a folder (not a link), owned by ``uid`` (default: the
    effective uid, root) with mode 0700; otherwise :class:`NotPrivate` says why. ``fstat`` of the opened folder must
    agree. Returns ``(fd, created)``; fd is None when the folder does not exist and ``create`` is false."""
    uid = os.geteuid() if uid is None else uid
    path = os.path.normpath(path)
    parent_fd = open_path(os.path.dirname(path))
    name = os.path.basename(path)
    try:
        created = False
        if create:
            try:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
                created = True
            except FileExistsError:
                pass
        st = lstat(name, parent_fd)
        if st is None:
            return None, False
        why = None if created else why_not_private(st, uid)
        if why:
            raise NotPrivate(errno.EPERM, why, path)
        fd = open_dir(name, parent_fd)
        if created:
            os.fchmod(fd, 0o700)  # the umask may have narrowed it
        fst = os.fstat(fd)
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or why_not_private(fst, uid):
            os.close(fd)
            raise NotPrivate(errno.EPERM, "it was replaced while being checked", path)
        return fd, created
    finally:
        os.close(parent_fd)


def make_path(path: str, mode: int = 0o700) -> int:
    """Open the absolute folder ``path`` like :func:`open_path` (no link followed), creating each missing component
    with ``mkdirat`` and ``mode`` (for ledgerguard's own folders: quarantine, staging). The caller closes the
    descriptor."""
    return _walk(path, lambda name, dir_fd: make_dir(name, dir_fd, mode)[0])
