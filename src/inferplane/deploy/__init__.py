"""Kubernetes rendering: `inferplane render` turns a deployment directory into ordered, validated manifests.

source.py      Deployment (inferplane.api) + options → RenderPlan (plan.py), accelerator variants, --backend sim
render.py      RenderPlan → ordered manifests, YAML stream or one file per object
modelserver.py / epp.py / bbr.py / routing.py / monitoring.py / providers.py   one object family each
validate.py    Kubernetes schemas (kubernetes-validate), CRDs from ../shared/schemas (crd.py), hand schemas
transport.py   TLS or cleartext HTTP/2 between each gateway and the EPP/BBR (why, per implementation); Istio's
               DestinationRule for the EPP
crosscheck.py  selectors ↔ pod labels, targetPorts ↔ container ports, EPP Service ↔ endpointPickerRef, gateway ↔
               picker transport
golden.py      `python -m inferplane.deploy.golden tests/data/golden` (make golden)
command.py     the CLI sub-command
"""
