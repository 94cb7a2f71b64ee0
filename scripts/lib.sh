# Shared by scripts/start and scripts/test (sourced, not run).
#
# The package lists below are everything a fresh Debian 12 machine needs to
# build madoguchi (MD_BUILD_PACKAGES) and to run its test suite
# (MD_TEST_PACKAGES).  md_install installs only what is missing, so a machine
# that has everything never touches the network.

MD_BUILD_PACKAGES=(
    meson ninja-build pkg-config gcc
    libglib2.0-dev libssl-dev libsqlite3-dev libjansson-dev
    libwebsockets-dev libwebsockets-evlib-glib
    libnice-dev libsrtp2-dev libusrsctp-dev libqrencode-dev
    sqlite3 openssl
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
)

# clang + compiler-rt: libFuzzer harnesses; clang-format: the formatting gate
# (tests/format-check.sh); GStreamer: the benchmark's
# pre-encoded media (tests/bench short mode); python3 + websockets + aiortc:
# the integration tests' independent client (always run as /usr/bin/python3),
# with python3-cryptography to open sealed columns and sign as an attacker
# would (tests/integration/test_keys.py); ffmpeg (ffprobe) + python3-av +
# python3-numpy: the recorder and recording tests read the exports
# (tests/recorder/, tests/integration/test_recording_media.py); chromium +
# firefox-esr + nodejs + libnss3-tools (certutil): the browser tests
# (tests/browser/, whose npm packages md_npm_ci installs); fonts-noto-cjk:
# Japanese text in the screenshots; systemd: the unit file check
# (systemd-analyze verify); zbar-tools: the admin test reads the TOTP QR code
# back (zbarimg); coturn + nftables: the TURN and blocked-UDP tests
# (tests/network/); GStreamer's webrtcbin (plugins-bad, nice) + libsoup: the
# native webrtcbin tablet (tests/webrtcbin/).
MD_TEST_PACKAGES=(
    clang libclang-rt-14-dev clang-format
    python3 python3-websockets python3-aiortc python3-cryptography python3-av python3-numpy ffmpeg
    chromium firefox-esr nodejs libnss3-tools fonts-noto-cjk systemd zbar-tools
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good iproute2
    coturn nftables
    gstreamer1.0-plugins-bad gstreamer1.0-nice libgstreamer-plugins-bad1.0-dev libsoup-3.0-dev
)

# bench/compare: Janus 1.1.2 to compare against, gnuplot for the chart, perf
# for --profile (the short benchmark in the test suite needs only GStreamer).
MD_BENCH_PACKAGES=(
    janus gnuplot-nox linux-perf iproute2
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
)

md_say() {
    printf '\n==> %s\n' "$*"
}

# md_install PACKAGE...: installs the packages that are not installed yet.
# apt's chatter goes to a log that is printed only when apt fails.
md_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        md_say "packages: all ${#} present"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: not root and no sudo; install these packages first: ${missing[*]}" >&2
            return 1
        fi
    fi
    md_say "packages: installing ${missing[*]}"
    local log
    log=$(mktemp)
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "error: apt-get failed (output above)" >&2
        return 1
    fi
    rm -f "$log"
}

# md_npm_ci DIR: installs DIR's npm packages exactly as its package-lock.json
# pins them (`npm ci`), unless node_modules was installed from that same lock
# file already.  Debian's npm is installed only if the machine's Node.js came
# without one.  No package may download a browser: the tests use Debian's.
md_npm_ci() {
    local dir=$1
    if ! command -v npm >/dev/null 2>&1; then
        md_install npm || return 1
    fi
    if cmp -s "$dir/package-lock.json" "$dir/node_modules/.md-package-lock.json"; then
        md_say "npm: $dir/node_modules is up to date"
        return 0
    fi
    md_say "npm: npm ci in $dir"
    (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        npm ci --no-audit --no-fund --loglevel=error) || return 1
    cp "$dir/package-lock.json" "$dir/node_modules/.md-package-lock.json"
}

# md_build DIR [MESON_OPTION...]: configures DIR once, then builds it.
md_build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@"
    elif [ $# -gt 0 ]; then
        meson configure "$dir" "$@"
    fi
    ninja -C "$dir"
}
