#!/usr/bin/env bash
# make container-check: build the Docker image and run the demo in it the way Singularity runs images.
#
# Starts a Docker engine of its own in a temporary folder (installing docker.io and debootstrap first if
# they are missing), makes a local Debian base image with debootstrap (no image registry is needed),
# builds the image with this host's pip settings as build arguments, runs `bidsapp --version` and the whole
# demo as an arbitrary non-root UID with a read-only image and a tmpfs /tmp, checks the outputs (present,
# owned by that UID, valid BIDS derivatives by the validator in the image), and
# stops the engine it started. Prints the build time, the image size and the demo's run time.
set -euo pipefail
cd "$(dirname "$0")/.."

# The image the Boutiques descriptor names.
IMAGE=$(python3 -c 'import json; print(json.load(open("boutiques.json"))["container-image"]["image"])')
BASE=bidsapp-base:bookworm
RUN_AS=4321:4321
say() { echo "[container-check] $*"; }

if ! command -v dockerd > /dev/null || ! command -v debootstrap > /dev/null; then
    say "installing docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap > /dev/null
fi
# The engine's own client (docker.io's), which matches its API version.
DOCKER=$(command -v /usr/bin/docker || command -v docker)

SCRATCH=$(mktemp -d /var/tmp/bidsapp-cc.XXXXXX)
ENGINE_PID=""
stop_engine() {
    if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2> /dev/null; then
        say "stopping the Docker engine (pid $ENGINE_PID)"
        kill "$ENGINE_PID"
        for _ in $(seq 60); do kill -0 "$ENGINE_PID" 2> /dev/null || break; sleep 1; done
    fi
    # The engine leaves its network namespace mounted under the scratch folder.
    grep -o " $SCRATCH/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l
    rm -rf "$SCRATCH"
}
trap stop_engine EXIT
trap 'exit 130' INT TERM

say "starting a Docker engine in $SCRATCH"
dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root "$SCRATCH/data" --exec-root "$SCRATCH/exec" --pidfile "$SCRATCH/dockerd.pid" \
    -H "unix://$SCRATCH/docker.sock" > "$SCRATCH/dockerd.log" 2>&1 &
ENGINE_PID=$!
export DOCKER_HOST="unix://$SCRATCH/docker.sock"
for _ in $(seq 60); do "$DOCKER" version > /dev/null 2>&1 && break; sleep 1; done
"$DOCKER" version > /dev/null 2>&1 || { tail -n 20 "$SCRATCH/dockerd.log"; say "the Docker engine did not start"; exit 1; }

say "making the base image $BASE with debootstrap"
debootstrap --variant=minbase bookworm "$SCRATCH/rootfs" http://deb.debian.org/debian > "$SCRATCH/debootstrap.log" \
    || { tail -n 20 "$SCRATCH/debootstrap.log"; exit 1; }
tar -C "$SCRATCH/rootfs" -c . | "$DOCKER" import - "$BASE" > /dev/null

say "building $IMAGE"
mkdir "$SCRATCH/pip"
python3 container/host_pip.py "$SCRATCH/pip"
started=$SECONDS
"$DOCKER" build --network host --build-arg "BASE_IMAGE=$BASE" \
    --build-arg "PIP_CONFIG=$(cat "$SCRATCH/pip/pip.conf")" \
    --build-arg "EXTRA_CA_CERTS=$(cat "$SCRATCH/pip/extra-ca.pem")" \
    -t "$IMAGE" . > "$SCRATCH/build.log" 2>&1 || {
    tail -n 40 "$SCRATCH/build.log"
    # The last step the log names (the legacy builder's "Step N/M : ..." or BuildKit's "#N [stage] ...").
    step=$(grep -E '^(Step [0-9]+/[0-9]+ : |#[0-9]+ \[)' "$SCRATCH/build.log" | tail -n 1 | cut -c 1-160)
    say "the build failed at ${step:-its first step} (the build log's last lines are above)"; exit 1; }
build_seconds=$((SECONDS - started))
size_mb=$(( $("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))
if "$DOCKER" history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" | grep -q -e "BEGIN CERTIFICATE" -e PIP_CONFIG; then
    say "the build arguments leaked into the final image"; exit 1
fi

# As Singularity does: any UID, nothing writable but /tmp and the bind mount, no network.
DEMO_DIR="$SCRATCH/demo"
mkdir -m 777 "$DEMO_DIR"
run=("$DOCKER" run --rm --network none --user "$RUN_AS" --read-only --tmpfs /tmp:rw,exec,mode=1777
     -v "$DEMO_DIR:$DEMO_DIR")
"${run[@]}" "$IMAGE" --version

say "running the demo in the container as UID ${RUN_AS%%:*}"
started=$SECONDS
make --no-print-directory run-demo DEMO_DIR="$DEMO_DIR" \
    DEMO_PYTHON="${run[*]} --entrypoint python $IMAGE" DEMO_BIDSAPP="${run[*]} $IMAGE" 2>&1 | tee "$SCRATCH/demo.log"
demo_seconds=$((SECONDS - started))
if grep -q -i -e "not a writable directory" -e "read-only file system" -e "permission denied" "$SCRATCH/demo.log"; then
    say "something in the container wanted to write outside /tmp and the outputs"; exit 1
fi

for output in results/fmriprep/dataset_description.json results/fmriprep/group/desc-onesample_report.html \
              results/fmriprep/group/desc-twosampleGroup_report.html \
              results/hcp/dataset_description.json results/hcp/group/desc-onesample_report.html; do
    [ -s "$DEMO_DIR/$output" ] || { say "missing output: $output"; exit 1; }
done
for pipeline in fmriprep hcp; do
    "${run[@]}" --entrypoint bids-validator-deno "$IMAGE" "$DEMO_DIR/results/$pipeline" > "$SCRATCH/validator.log" \
        || { tail -n 20 "$SCRATCH/validator.log"; say "results/$pipeline is not a valid BIDS derivatives dataset"; exit 1; }
done
foreign=$(find "$DEMO_DIR/results" ! -uid "${RUN_AS%%:*}" | head -n 1)
[ -z "$foreign" ] || { say "$foreign is not owned by UID ${RUN_AS%%:*}"; exit 1; }

say "build ${build_seconds} s, image ${size_mb} MB, demo in the container ${demo_seconds} s: passed"
