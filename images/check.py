"""`python3 images/check.py` checks the images that images/build wrote the way a registry and a
container runtime see them, with no container engine. As root (it mounts), from the repository
root, with helm-python-sdk and pyyaml importable:

1. images/publish pushes the images and the chart to a local registry (crane's);
2. per image: the registry holds the digest the build wrote, every blob verifies, and the config
   has the entrypoint, the numeric non-root user and the OCI labels of this commit;
3. its root filesystem (crane export) holds exactly the expected files: a static binary, users,
   CA certificates, and no shell;
4. its entrypoint runs from that root filesystem in a mount namespace, as the image's user, with
   the image's environment: tooken-server serves /healthz on SQLite in a volume directory and
   delivers signed webhooks to names resolved through /etc/hosts and through DNS; the operator
   and the sidecar answer --version;
5. the chart's default images are exactly the ones built and published.
Exits non-zero on the first failure."""

import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request

import yaml
from helm_python.chart import Chart

sys.path.insert(0, os.path.dirname(__file__))
from dns import NameServer  # noqa: E402
from layout import elf_interpreter  # noqa: E402

PROGRAMS = ["tooken-server", "tooken-operator", "tooken-sidecar"]
USER = 65532
HOST_PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}
# The device nodes the OCI runtime spec gives every container (the static binaries read
# /dev/urandom: without dlsym, getrandom's crate falls back to it).
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]
NAME_SERVER = "127.0.0.153"  # a loopback address of the check's own, so port 53 is free
DEADLINE = 30  # seconds for anything awaited: the registry, the server, a delivery


def run(*command):
    # The scripts run here use this python, which has helm-python-sdk.
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
    if result.returncode != 0:
        raise SystemExit(f"FAIL {' '.join(command)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def crane(*args):
    return run("images/crane", *args)


def wait_for(what, condition):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise SystemExit(f"FAIL {what} within {DEADLINE} s")


def expect(ok, message):
    if not ok:
        raise SystemExit(f"FAIL {message}")
    print(f"ok   {message}", flush=True)


def cargo_version():
    meta = json.loads(run("cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"))
    target = meta["target_directory"]
    return next(p["version"] for p in meta["packages"] if p["name"] == "tooken-api-server"), target


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """crane's in-memory registry on a free loopback port."""

    def __init__(self, workdir):
        self.log = open(os.path.join(workdir, "registry.log"), "w+")
        self.process = subprocess.Popen(["images/crane", "registry", "serve", "--address", "127.0.0.1:0"],
                                        stdout=self.log, stderr=self.log)

        def port():
            self.log.seek(0)
            found = re.search(r"serving on port (\d+)", self.log.read())
            return found and found.group(1)

        self.host = f"127.0.0.1:{wait_for('the local registry serving', port)}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=DEADLINE)


def check_config(program, reference, platform, version, chart):
    config = json.loads(crane("config", "--platform", platform, reference))
    c = config["config"]
    expect(c["Entrypoint"] == [f"/usr/local/bin/{program}"] and not c.get("Cmd"),
           f"{program} ({platform}): entrypoint /usr/local/bin/{program}, no command")
    expect(c["User"] == f"{USER}:{USER}", f"{program} ({platform}): user {USER}:{USER}")
    commit = run("git", "rev-parse", "HEAD").strip()
    dirty = run("git", "status", "--porcelain", "--untracked-files=no").strip()
    committed = int(run("git", "log", "-1", "--format=%ct"))
    labels = c["Labels"]
    expected = {
        "org.opencontainers.image.source": chart["home"],
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": commit + ("-dirty" if dirty else ""),
        "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(committed)),
        "org.opencontainers.image.title": program,
    }
    for key, value in expected.items():
        expect(labels.get(key) == value, f"{program} ({platform}): label {key}={value}")
    expect(config["created"] == expected["org.opencontainers.image.created"],
           f"{program} ({platform}): created at the commit's time, not the build's")
    return config


def unpack(program, reference, platform, rootfs):
    """The image's root filesystem as a runtime would lay it out; returns its file list."""
    os.makedirs(rootfs)
    os.chmod(rootfs, 0o755)  # "/" of the image, whatever the umask
    export = subprocess.Popen(["images/crane", "export", "--platform", platform, reference, "-"],
                              stdout=subprocess.PIPE)
    with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
        members = []
        for member in tar:
            members.append(member)
            tar.extract(member, rootfs, numeric_owner=True, filter="fully_trusted")
    expect(export.wait() == 0, f"{program} ({platform}): crane export unpacks the root filesystem")
    return {m.name.rstrip("/"): m for m in members}


def check_rootfs(program, members, rootfs):
    files = {"etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/ssl/certs/ca-certificates.crt",
             f"usr/local/bin/{program}"}
    ours = {"home/nonroot"} | ({"data"} if program == "tooken-server" else set())
    dirs = {"etc", "etc/ssl", "etc/ssl/certs", "home", "tmp", "usr", "usr/local", "usr/local/bin"} | ours
    expect(set(members) == files | dirs, f"{program}: the root filesystem holds exactly {sorted(files | dirs)} (no shell)")
    expect(all(members[path].isfile() for path in files), f"{program}: {sorted(files)} are plain files")
    owners = {path: members[path].uid for path in members}
    expect(owners == {path: USER if path in ours else 0 for path in members},
           f"{program}: everything is owned by root but {sorted(ours)}, owned by {USER}")
    with open(os.path.join(rootfs, "usr/local/bin", program), "rb") as f:
        binary = f.read()
    expect(elf_interpreter(binary) is None, f"{program}: the binary is statically linked")
    for path in {os.getcwd(), os.path.expanduser("~/.cargo")}:
        expect(path.encode() not in binary, f"{program}: the binary holds no build path ({path})")
    with open(os.path.join(rootfs, "etc/ssl/certs/ca-certificates.crt"), "rb") as f:
        certificates = f.read().count(b"-----BEGIN CERTIFICATE-----")
    expect(certificates > 100, f"{program}: CA certificates ({certificates})")
    passwd = open(os.path.join(rootfs, "etc/passwd")).read()
    expect(f"nonroot:x:{USER}:{USER}:" in passwd, f"{program}: /etc/passwd names user {USER}")


class Container:
    """The image's entrypoint started from its unpacked root filesystem the way a runtime does:
    a private mount namespace, the devices every OCI runtime provides, volumes and /etc files
    bind-mounted in, then a chroot into the root
    with the config's working directory, user and environment. The host's network is kept, so
    the check can reach it on loopback."""

    def __init__(self, rootfs, config, args, env=None, mounts=(), **popen):
        c = config["config"]
        uid, gid = c["User"].split(":")
        mounts = [(f"/dev/{device}", f"dev/{device}") for device in DEVICES] + list(mounts)
        for source, target in mounts:
            point = os.path.join(rootfs, target)
            if not os.path.exists(point):  # a runtime makes mount points too
                os.makedirs(os.path.dirname(point), exist_ok=True)
                open(point, "w").close()
        script = "".join(f'/usr/bin/mount --bind "{source}" "$0/{target}" && ' for source, target in mounts)
        script += f'exec /usr/bin/unshare --root="$0" --wd={c["WorkingDir"]} --setuid={uid} --setgid={gid} -- "$@"'
        environment = dict(e.split("=", 1) for e in c["Env"])
        environment.update(env or {})
        self.process = subprocess.Popen(
            ["/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
             rootfs, *c["Entrypoint"], *args], env=environment, **popen)

    def uid(self):
        status = open(f"/proc/{self.process.pid}/status").read()
        return re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)


def check_version(program, rootfs, config, version):
    container = Container(rootfs, config, ["--version"], stdout=subprocess.PIPE, text=True)
    out, _ = container.process.communicate(timeout=DEADLINE)
    expect(container.process.returncode == 0 and out == f"{program} {version}\n",
           f"{program}: the image's entrypoint answers --version with '{program} {version}'")


class Receiver(http.server.BaseHTTPRequestHandler):
    deliveries = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.deliveries.append((self.path, self.headers["X-Tooken-Signature"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def api(port, method, path, key, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return response.status, json.load(response)


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def check_server(rootfs, config, workdir):
    # A volume as a cluster gives it: a directory of its own, writable by the pod's fsGroup.
    volume = os.path.join(workdir, "volume")
    os.makedirs(volume)
    os.chown(volume, USER, USER)
    # What a runtime mounts: /etc/hosts, and a resolv.conf naming a DNS server (here, one that
    # knows a single name). Webhooks to a name from each prove the static binary resolves names.
    etc = {"hosts": "127.0.0.1 localhost\n", "resolv.conf": f"nameserver {NAME_SERVER}\n"}
    for name, text in etc.items():
        with open(os.path.join(workdir, name), "w") as f:
            f.write(text)
    mounts = [(volume, "data")] + [(os.path.join(workdir, name), f"etc/{name}") for name in etc]

    bootstrap = Container(rootfs, config, ["bootstrap", "--workspace", "image-check"], mounts=mounts,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    key, errors = bootstrap.process.communicate(timeout=DEADLINE)
    key = key.strip()
    expect(bootstrap.process.returncode == 0 and key.startswith("tok_live_"),
           "tooken-server: `bootstrap` from the image creates a workspace on SQLite in the volume" +
           ("" if bootstrap.process.returncode == 0 else f":\n{errors}"))

    dns = NameServer(NAME_SERVER, "receiver.tooken.test")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = free_port()
    log = open(os.path.join(workdir, "tooken-server.log"), "w")
    # The receiver is on this machine, which the webhook guard refuses unless it is allowed.
    env = {"TOOKEN_LISTEN": f"127.0.0.1:{port}", "TOOKEN_WEBHOOK_ALLOWED_TARGETS": "127.0.0.0/8,::1,localhost"}
    server = Container(rootfs, config, [], env=env, mounts=mounts,
                       stdout=log, stderr=log)
    try:
        wait_for("tooken-server from the image serving /healthz", lambda: healthz(port) or server.process.poll() is not None)
        expect(server.process.poll() is None, "tooken-server: the image's entrypoint serves /healthz (200)")
        expect(server.uid() == str(USER), f"tooken-server: runs as uid {USER}")
        database = os.path.join(volume, "tooken.db")
        expect(os.stat(database).st_uid == USER, f"tooken-server: its SQLite database is in the volume, owned by {USER}")
        secrets = {}
        for host, how in (("localhost", "/etc/hosts"), ("receiver.tooken.test", "DNS")):
            url = f"http://{host}:{receiver.server_address[1]}/{host}"
            status, hook = api(port, "POST", "/v1/webhooks", key, {"url": url, "event_types": ["token.created"]})
            expect(status == 201, f"tooken-server: a webhook endpoint at {host} is created")
            secrets[f"/{host}"] = (hook["secret"], how)
        status, _ = api(port, "POST", "/v1/tokens", key, {"name": "image-check", "scopes": ["tokens:read"]})
        expect(status == 201, "tooken-server: a token is created")
        wait_for("both token.created webhooks delivered", lambda: len(Receiver.deliveries) >= 2)
        for path, signature, body in Receiver.deliveries:
            secret, how = secrets[path]
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            expect(hmac.compare_digest(signature, expected) and json.loads(body)["type"] == "token.created",
                   f"tooken-server: delivers a signed webhook to {path[1:]}, a name resolved through {how}")
    except BaseException:
        print(open(log.name).read()[-4000:], file=sys.stderr)
        raise
    finally:
        code = server.stop()
        receiver.shutdown()
        dns.close()
    expect(code == 0, "tooken-server: stops cleanly on SIGTERM")


def check_chart(version, published, chart):
    """The chart's defaults must pull exactly the images the build tagged and the release pushes."""
    values = yaml.safe_load(open("charts/tooken/values.yaml"))
    release = yaml.safe_load(open(".github/workflows/release.yml"))
    expect(values["image"]["registry"] == release["env"]["REGISTRY"],
           f"the chart's image.registry is where the release workflow pushes ({release['env']['REGISTRY']})")
    expect(chart["appVersion"] == version, f"the chart's appVersion is the programs' version ({version})")
    with Chart.load("charts/tooken") as loaded:
        manifests = loaded.render(values={}, name="tooken", namespace="tooken", is_install=True)
    images = set()
    for path, text in manifests.items():
        for doc in yaml.safe_load_all(text) if path.endswith(".yaml") else ():
            spec = ((doc or {}).get("spec", {}).get("template") or {}).get("spec", {})
            images.update(c["image"] for c in spec.get("containers", []) + spec.get("initContainers", []))
    expected = {f"{values['image']['registry']}/{program}:{version}" for program in PROGRAMS}
    expect(images == expected, f"the chart's default pods run exactly {sorted(expected)}")
    expect(set(published) == set(PROGRAMS), "images/publish pushed an image named after each program")


def main():
    version, target = cargo_version()
    chart = yaml.safe_load(open("charts/tooken/Chart.yaml"))
    layouts = os.path.join(target, "images", "oci")
    workdir = tempfile.mkdtemp(prefix="tooken-images-")
    registry = Registry(workdir)
    try:
        repository = f"{registry.host}/tooken"
        pushed = run("images/publish", repository).split()
        published = {}
        for line in pushed:
            name, digest = line.rsplit("@", 1)
            published[name.split("/")[-1].split(":")[0]] = digest
        chart_digest = published.pop("tooken")
        expect(chart_digest.startswith("sha256:"), f"images/publish pushed the chart to oci://{repository}/charts/tooken")
        for program in PROGRAMS:
            reference = f"{repository}/{program}:{version}"
            index = json.load(open(os.path.join(layouts, program, "index.json")))["manifests"][0]
            expect(crane("digest", reference).strip() == index["digest"] == published[program],
                   f"{program}: the registry serves the digest the build wrote ({index['digest']})")
            crane("validate", "--remote", reference)
            print(f"ok   {program}: every blob verifies (crane validate)")
            configs = {}
            for manifest in json.loads(crane("manifest", reference))["manifests"]:
                platform = f"{manifest['platform']['os']}/{manifest['platform']['architecture']}"
                configs[platform] = check_config(program, reference, platform, version, chart)
            host = HOST_PLATFORM[os.uname().machine]
            config = configs[host]
            rootfs = os.path.join(workdir, program, "rootfs")
            check_rootfs(program, unpack(program, reference, host, rootfs), rootfs)
            if program == "tooken-server":
                check_server(rootfs, config, os.path.join(workdir, program))
            else:
                check_version(program, rootfs, config, version)
        check_chart(version, published, chart)
    finally:
        registry.stop()
    shutil.rmtree(workdir)
    print("images: all checks passed")


if __name__ == "__main__":
    main()
