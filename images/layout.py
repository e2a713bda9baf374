"""Writes the OCI image layout of each Tooken program, byte for byte the same for the same inputs.

    python3 images/layout.py --out DIR --version V --revision SHA --epoch SECONDS --source URL \
        amd64=DIR_WITH_BINARIES [arm64=DIR ...]

For each program, DIR/<program>/ becomes an OCI layout whose index.json names one image index
(tag V) with a manifest per architecture. Every image has two layers: the files every program
shares (users, CA certificates, name-service config), then the static binary and the
directories of its own. Tar entries are
sorted and owned by root, every mtime is SECONDS (the commit's time), gzip carries no name or
time, and JSON is written with sorted keys, so the digests depend on the inputs only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import tarfile
import time

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
USER = 65532
# Each program: entrypoint under /usr/local/bin, the ports it listens on, its environment.
PROGRAMS = {
    "tooken-server": {
        "description": "The Tooken REST API server and dashboard",
        "ports": ["8080/tcp"],
        # The chart sets the same two; they make a bare `run -v …:/data -p 8080:8080` work.
        "env": ["TOOKEN_LISTEN=0.0.0.0:8080", "DATABASE_URL=sqlite:///data/tooken.db"],
        "dirs": ["data"],
    },
    "tooken-operator": {
        "description": "Turns TookenToken resources into tokens kept in Secrets",
        "ports": ["8081/tcp"],
        "env": [],
        "dirs": [],
    },
    "tooken-sidecar": {
        "description": "Receives signed token.rotated webhooks, rolls workloads, keeps token files current",
        "ports": ["8080/tcp"],
        "env": [],
        "dirs": [],
    },
}
ENV = ["PATH=/usr/local/bin", f"SSL_CERT_FILE={CA_BUNDLE}"]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Tree:
    """A layer's files; parent directories are added as they are needed."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.entries = {}

    def dir(self, path, mode=0o755, owner=0):
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self.dir(parent)
        self.entries.setdefault(path, (tarfile.DIRTYPE, mode, owner, b""))

    def file(self, path, data, mode=0o644):
        if os.path.dirname(path):
            self.dir(os.path.dirname(path))
        self.entries[path] = (tarfile.REGTYPE, mode, 0, data)

    def tar(self):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, mode, owner, data = self.entries[path]
                info = tarfile.TarInfo(path)
                info.type, info.mode, info.mtime = kind, mode, self.epoch
                info.uid = info.gid = owner
                info.uname = info.gname = ""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        return out.getvalue()


def base_tree(epoch):
    tree = Tree(epoch)
    tree.file("etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n".encode())
    tree.file("etc/group", f"root:x:0:\nnonroot:x:{USER}:\n".encode())
    # Names: /etc/hosts first (the runtime mounts it), then DNS (the runtime's resolv.conf).
    tree.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    with open(CA_BUNDLE, "rb") as bundle:
        tree.file(CA_BUNDLE.lstrip("/"), bundle.read())
    tree.dir("tmp", mode=0o1777)
    tree.dir("home/nonroot", mode=0o700, owner=USER)
    return tree


ELF_MACHINE = {"amd64": 62, "arm64": 183}


def elf_interpreter(data):
    """The PT_INTERP of a 64-bit little-endian ELF executable, or None for a static one."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:
            offset, = struct.unpack_from("<Q", data, phoff + i * phentsize + 8)
            size, = struct.unpack_from("<Q", data, phoff + i * phentsize + 32)
            return data[offset:offset + size].rstrip(b"\0").decode()
    return None


def check_binary(path, data, arch):
    """Only a static executable for the image's architecture goes in."""
    if data[:6] != b"\x7fELF\x02\x01" or struct.unpack_from("<H", data, 0x12)[0] != ELF_MACHINE[arch]:
        raise SystemExit(f"{path} is not a 64-bit little-endian {arch} ELF executable")
    interpreter = elf_interpreter(data)
    if interpreter:
        raise SystemExit(f"{path} is dynamically linked (interpreter {interpreter}); the images hold static binaries only")


class Layout:
    def __init__(self, path):
        if os.path.exists(path):
            shutil.rmtree(path)
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        self.path = path

    def blob(self, media_type, data, **extra):
        digest = sha256(data)
        with open(os.path.join(self.path, "blobs", "sha256", digest.split(":")[1]), "wb") as out:
            out.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def layer(self, tree):
        raw = tree.tar()
        packed = io.BytesIO()
        with gzip.GzipFile(filename="", fileobj=packed, mode="wb", mtime=0, compresslevel=9) as gz:
            gz.write(raw)
        return self.blob(LAYER, packed.getvalue()), sha256(raw)

    def finish(self, index_descriptor):
        with open(os.path.join(self.path, "oci-layout"), "wb") as out:
            out.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(self.path, "index.json"), "wb") as out:
            out.write(canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [index_descriptor]}))


def image(layout, name, arch, binary, args):
    program = PROGRAMS[name]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(args.epoch))
    app = Tree(args.epoch)
    app.file(f"usr/local/bin/{name}", binary, mode=0o755)
    for path in program["dirs"]:
        app.dir(path, mode=0o700, owner=USER)
    layers, diff_ids = zip(*(layout.layer(tree) for tree in (base_tree(args.epoch), app)))
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.description": program["description"],
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{USER}:{USER}",
            "Entrypoint": [f"/usr/local/bin/{name}"],
            "Env": ENV + program["env"],
            "WorkingDir": "/home/nonroot",
            "ExposedPorts": {port: {} for port in program["ports"]},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [
            {"created": created, "created_by": "images/layout.py: users, CA certificates, nsswitch.conf"},
            {"created": created, "created_by": f"images/layout.py: /usr/local/bin/{name}"},
        ],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": layout.blob(CONFIG, canonical_json(config)),
        "layers": list(layers),
    }
    return layout.blob(MANIFEST, canonical_json(manifest), platform={"architecture": arch, "os": "linux"})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--epoch", required=True, type=int)
    parser.add_argument("--source", required=True)
    parser.add_argument("binaries", nargs="+", metavar="ARCH=DIR")
    args = parser.parse_args()
    for name in PROGRAMS:
        layout = Layout(os.path.join(args.out, name))
        manifests = []
        for arch, directory in sorted(spec.split("=", 1) for spec in args.binaries):
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                binary = f.read()
            check_binary(path, binary, arch)
            manifests.append(image(layout, name, arch, binary, args))
        index = canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
        descriptor = layout.blob(INDEX, index, annotations={"org.opencontainers.image.ref.name": args.version})
        layout.finish(descriptor)
        print(f"{name}:{args.version} {descriptor['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
