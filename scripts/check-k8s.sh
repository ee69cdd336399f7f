#!/bin/bash
# Checks the Kubernetes manifests of deploy/kubernetes/ without a cluster. With a cluster that
# kubectl can reach, `kubectl apply --dry-run=client` (which asks the API server for its schema).
# Without one (as here), every object is checked against the official Kubernetes OpenAPI schema
# as packaged by the npm package kubernetes-models (types, required fields, enums, formats), and
# then compiled by TypeScript against the same package's type declarations, which catches what the
# schema check lets through: misspelt or unknown fields. The objects checked are those that
# `kubectl apply -k deploy/kubernetes/` would send (rendered by `kubectl kustomize` when kubectl is
# there, else emotiond.yaml as it is) and those of secret.example.yaml. Prints what it checked.
#
#   scripts/check-k8s.sh [FILE.yaml]...      (default: deploy/kubernetes/, as above)
#
# Needs node and npm (Debian nodejs, npm: scripts/setup.sh --container) and the npm registry
# the first time: the packages, at pinned versions, go to a cache folder, $EMO_K8S_CHECK_DIR
# (default ${XDG_CACHE_HOME:-~/.cache}/emotiond/k8s-check), not into the checkout.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
cache=${EMO_K8S_CHECK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/emotiond/k8s-check}
# kubernetes-models 4.5.1: the last that declares support for Debian 12's node 18 (5.x needs node 22).
packages=(kubernetes-models@4.5.1 yaml@2.9.1 typescript@5.9.3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

files=()
if [ $# -gt 0 ]; then
        files=("$@")
else
        if command -v kubectl >/dev/null && kubectl kustomize "$src/deploy/kubernetes" >"$work/kustomized.yaml" 2>"$work/err"; then
                echo "==> kubectl kustomize deploy/kubernetes/ (what kubectl apply -k sends)"
                files+=("$work/kustomized.yaml")
        else
                files+=("$src/deploy/kubernetes/emotiond.yaml")
        fi
        files+=("$src/deploy/kubernetes/secret.example.yaml")
fi

# A cluster answers: let it judge (its own schema, its own version).
if command -v kubectl >/dev/null && kubectl version --request-timeout=5s >/dev/null 2>&1; then
        echo "==> kubectl apply --dry-run=client (the cluster of the current context)"
        for f in "${files[@]}"; do
                kubectl apply --dry-run=client --validate=strict -f "$f"
        done
        exit 0
fi
echo "==> no cluster reachable by kubectl: checking against the Kubernetes OpenAPI schema (npm kubernetes-models)"

command -v node >/dev/null && command -v npm >/dev/null ||
        { echo "check-k8s.sh: node and npm are needed (apt-get install nodejs npm)" >&2; exit 2; }
stamp="$cache/.installed-$(echo "${packages[*]}" | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
        echo "==> npm install ${packages[*]} into $cache"
        mkdir -p "$cache"
        [ -f "$cache/package.json" ] || echo '{"private": true}' >"$cache/package.json"
        (cd "$cache" && npm install --silent --no-audit --no-fund --save-exact "${packages[@]}") ||
                { echo "check-k8s.sh: npm install failed" >&2; exit 2; }
        touch "$stamp"
fi

cat >"$work/check.js" <<'EOF'
// Reads the YAML files, checks each object against its schema, writes check.ts (one typed
// constant per object) for tsc, and prints what was checked.
const fs = require("fs");
const path = require("path");
const [cache, work, ...files] = process.argv.slice(2);
const YAML = require(path.join(cache, "node_modules/yaml"));
let failed = 0, n = 0;
const ts = [];
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) { console.log(`FAIL: ${file}: ${doc.errors[0].message}`); failed++; continue; }
    const obj = doc.toJS();
    if (!obj) continue;
    const name = `${obj.apiVersion} ${obj.kind} ${obj.metadata && obj.metadata.name}`;
    const group = obj.apiVersion.includes("/") ? obj.apiVersion : `v1`;
    const mod = `kubernetes-models/${group}/${obj.kind}`;
    let Model;
    try {
      Model = require(path.join(cache, "node_modules", mod))[obj.kind];
    } catch (e) {
      console.log(`FAIL: ${path.basename(file)}: ${name}: no schema for this kind (${mod})`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`PASS: ${path.basename(file)}: ${name}: valid against the OpenAPI schema`);
    } catch (e) {
      console.log(`FAIL: ${path.basename(file)}: ${name}: ${e.message}`);
      failed++;
    }
    ts.push(`import type { I${obj.kind} as T${n} } from "${mod}";`);
    ts.push(`// ${path.basename(file)}: ${name}\nexport const o${n}: T${n} = ${JSON.stringify(obj, null, 2)};`);
    n++;
  }
}
fs.writeFileSync(path.join(work, "check.ts"), ts.join("\n") + "\n");
fs.writeFileSync(path.join(work, "count"), `${n} ${failed}\n`);
EOF
node "$work/check.js" "$cache" "$work" "${files[@]}"
read -r count failed <"$work/count"

# Excess property checks: an object literal with a field its interface does not declare is a
# compile error ("Object literal may only specify known properties").
cat >"$work/tsconfig.json" <<EOF
{ "compilerOptions": { "strict": true, "noEmit": true, "skipLibCheck": true, "module": "commonjs",
    "moduleResolution": "node", "typeRoots": [], "baseUrl": "$cache/node_modules",
    "paths": { "*": ["$cache/node_modules/*"] } },
  "files": ["check.ts"] }
EOF
if (cd "$work" && "$cache/node_modules/.bin/tsc" -p tsconfig.json >"$work/tsc.out" 2>&1); then
        echo "PASS: $count object(s): no unknown or misspelt field (TypeScript, kubernetes-models' declarations)"
else
        sed 's/^/    /' "$work/tsc.out" | head -40
        echo "FAIL: unknown fields or wrong types (tsc above; line numbers are those of the generated check.ts)"
        failed=$((failed + 1))
fi
echo "==> $count object(s) checked, $failed failure(s)"
[ "$failed" -eq 0 ]
