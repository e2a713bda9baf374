"""`python3 images/push_chart.py REGISTRY DIR` packages charts/tooken into DIR and pushes it to
oci://REGISTRY/charts with Helm's own SDK (helm-python-sdk, no helm binary): the chart becomes
oci://REGISTRY/charts/tooken:<chart version>. With REGISTRY_USERNAME and REGISTRY_PASSWORD set it
logs in first; a registry on 127.0.0.1 or localhost is spoken to over plain HTTP. Prints
REGISTRY/charts/tooken@<digest>, as crane push prints an image."""

import os
import sys

from helm_python import chart, registry


def main(target, directory):
    host = target.split("/")[0]
    plain_http = host.split(":")[0] in ("127.0.0.1", "localhost")
    archive = chart.package("charts/tooken", destination=directory)
    loaded = chart.Chart.load(archive)
    with registry.RegistryClient(plain_http=plain_http) as client:
        if os.environ.get("REGISTRY_USERNAME"):
            client.login(host, os.environ["REGISTRY_USERNAME"], os.environ["REGISTRY_PASSWORD"], plain_http=plain_http)
        client.push(archive, f"oci://{target}/charts", plain_http=plain_http)
        digest = client.resolve(f"oci://{target}/charts/{loaded.name}:{loaded.version}")["digest"]
        print(f"{target}/charts/{loaded.name}@{digest}")


if __name__ == "__main__":
    main(*sys.argv[1:])
