# Shared by bench/compare and bench/short.sh (sourced, bash): prepare a
# madoguchi data directory with the CLI the way tests/integration/harness.py
# does (certs init, registry import, `user add --password-stdin` whose
# otpauth:// URI gives the TOTP secret, `device issue`), write a config for
# one address, start and stop the gateway, and write the load generator's
# plan file.  Everything lives under the directory given; nothing global.

MDB_PASSWORD=bench-password-0123456789
MDB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# mdb_free_ports N: N distinct free TCP ports on 127.0.0.1, one per line (all
# sockets stay bound until every port is chosen, so none repeats).
mdb_free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# mdb_md_config DIR HOST STAFF_PORT DEVICE_PORT [NACK_PACKETS]
# NACK_PACKETS: media.nack_buffer_packets for the run (default: the config's).
# Every bench client comes from one address: the per-address connection cap
# and the login throttle (issue #11) are lifted, they are not what is measured.
mdb_md_config() {
    local dir=$1 host=$2 sp=$3 dp=$4 nack=${5:+, \"nack_buffer_packets\": $5}
    cat >"$dir/config.json" <<EOF
{"data_dir": "$dir", "log_level": "${MDB_MD_LOG_LEVEL:-warn}",
 "public_url": "https://$host:$sp",
 "staff_listen": {"address": "$host", "port": $sp},
 "device_listen": {"address": "$host", "port": $dp},
 "limits": {"max_connections": 4096, "connections_per_source": 1000000},
 "auth": {"login_per_source_per_minute": 100000, "login_per_minute": 100000, "login_queue": 10000},
 "session": {"connect_timeout_seconds": 120},
 "media": {"bind_address": "$host"$nack}}
EOF
}

# mdb_md_prepare MADOGUCHI DIR N: data dir with N verifiers and N tablets;
# writes DIR/clients (plan lines).  Idempotent per DIR.  Session i's tablet
# and verifier belong to municipality i / MDB_PER_MUN (bench/registry.py): a
# single municipality with N verifiers would turn every request into a
# `queue` broadcast to N verifiers, O(N^2) messages while sessions start,
# which is not how the gateway is deployed.
MDB_PER_MUN=5
mdb_md_prepare() {
    local md=$1 dir=$2 n=$3 i out secret
    # (a template from before recording was allowed is made again)
    [[ -s $dir/clients && $(grep -c '^tablet' "$dir/clients") -ge $n ]] &&
        grep -q '"optional"' "$dir/registry.json" 2>/dev/null && return 0
    rm -rf "$dir"
    mkdir -p "$dir"
    mdb_md_config "$dir" 127.0.0.1 1 2
    "$md" -c "$dir/config.json" certs init >/dev/null
    python3 "$MDB_SRC/bench/registry.py" "$n" "$MDB_PER_MUN" >"$dir/registry.json"
    "$md" -c "$dir/config.json" registry import "$dir/registry.json" >/dev/null
    : >"$dir/clients.tmp"
    for ((i = 0; i < n; i++)); do
        out=$(echo "$MDB_PASSWORD" | "$md" -c "$dir/config.json" user add "mdb-v$i" \
            --role verifier --password-stdin \
            --municipality "$(python3 "$MDB_SRC/bench/registry.py" --code "$n" "$MDB_PER_MUN" "$i")")
        secret=$(grep -o 'secret=[A-Z2-7]*' <<<"$out" | cut -d= -f2)
        [[ -n $secret ]] || { echo "user add printed no otpauth URI: $out" >&2; return 1; }
        "$md" -c "$dir/config.json" device issue "MDB-TAB-$i" --post-office "PO-MDB-$((i / MDB_PER_MUN))" >/dev/null
        echo "tablet MDB-TAB-$i $dir/devices/MDB-TAB-$i.crt $dir/devices/MDB-TAB-$i.key" >>"$dir/clients.tmp"
        echo "verifier mdb-v$i $MDB_PASSWORD $secret" >>"$dir/clients.tmp"
    done
    mv "$dir/clients.tmp" "$dir/clients"
}

# mdb_md_plan DIR HOST STAFF_PORT DEVICE_PORT BIND > plan
mdb_md_plan() {
    local dir=$1 host=$2 sp=$3 dp=$4 bind=$5
    printf 'kind madoguchi\nhost %s\nstaff_port %s\ndevice_port %s\nca %s\norigin https://%s:%s\nbind %s\n' \
        "$host" "$sp" "$dp" "$dir/certs/ca.crt" "$host" "$sp" "$bind"
    cat "$dir/clients"
}

# mdb_wait_healthz HOST PORT CA PID: up to 20 s
mdb_wait_healthz() {
    local host=$1 port=$2 ca=$3 pid=$4 i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        python3 - "$host" "$port" "$ca" <<'EOF' 2>/dev/null && return 0
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3]); ctx.check_hostname = False
c = http.client.HTTPSConnection(sys.argv[1], int(sys.argv[2]), context=ctx, timeout=1)
c.request("GET", "/healthz"); sys.exit(0 if c.getresponse().status == 200 else 1)
EOF
        sleep 0.1
    done
    return 1
}

# Two network namespaces joined by a veth pair: the gateway's (10.77.0.1)
# and the generator's (10.77.0.2).  Janus ignores loopback for ICE, so both
# gateways run this way.  bench/compare makes a fresh pair for every run
# (mdb_netns_up TAG), so no socket, TIME_WAIT entry, neighbour or counter of
# one run is there in the next.  Names carry the caller's pid and the tag so
# parallel runs do not collide; mdb_netns_down is idempotent (call it from a
# trap).
MDB_GW_IP=10.77.0.1
MDB_CL_IP=10.77.0.2
mdb_netns_up() { # [TAG]
    local tag=$$${1:+_$1}
    MDB_NS_GW=mdb-gw-$tag
    MDB_NS_CL=mdb-cl-$tag
    MDB_VETH_GW=mg$tag
    MDB_VETH_CL=mc$tag
    ip netns add "$MDB_NS_GW"
    ip netns add "$MDB_NS_CL"
    ip link add "$MDB_VETH_GW" type veth peer name "$MDB_VETH_CL"
    ip link set "$MDB_VETH_GW" netns "$MDB_NS_GW"
    ip link set "$MDB_VETH_CL" netns "$MDB_NS_CL"
    ip -n "$MDB_NS_GW" addr add "$MDB_GW_IP/24" dev "$MDB_VETH_GW"
    ip -n "$MDB_NS_CL" addr add "$MDB_CL_IP/24" dev "$MDB_VETH_CL"
    ip -n "$MDB_NS_GW" link set lo up
    ip -n "$MDB_NS_CL" link set lo up
    ip -n "$MDB_NS_GW" link set "$MDB_VETH_GW" up
    ip -n "$MDB_NS_CL" link set "$MDB_VETH_CL" up
}
# Ends what still runs in the two namespaces (only what this run started
# there), deletes the veth pair (at once: the kernel's cleanup of a deleted
# namespace runs later, in the background) and then the namespaces.
mdb_netns_down() {
    local ns pid i
    for ns in ${MDB_NS_GW:-} ${MDB_NS_CL:-}; do
        ip netns pids "$ns" >/dev/null 2>&1 || continue
        for pid in $(ip netns pids "$ns"); do kill -TERM "$pid" 2>/dev/null; done
        for ((i = 0; i < 50; i++)); do
            [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
            sleep 0.1
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    [[ -n ${MDB_NS_GW:-} ]] && ip -n "$MDB_NS_GW" link del "$MDB_VETH_GW" 2>/dev/null
    [[ -n ${MDB_NS_GW:-} ]] && ip netns del "$MDB_NS_GW" 2>/dev/null
    [[ -n ${MDB_NS_CL:-} ]] && ip netns del "$MDB_NS_CL" 2>/dev/null
    MDB_NS_GW= MDB_NS_CL=
    return 0
}

# mdb_janus_config DIR HOST PORT: a Janus 1.1.2 configuration folder with
# only the WebSocket transport and the VideoCall plugin, ICE on HOST only.
mdb_janus_config() {
    local dir=$1 host=$2 port=$3 lib=/usr/lib/x86_64-linux-gnu/janus
    mkdir -p "$dir"
    cat >"$dir/janus.jcfg" <<EOF
general: {
    configs_folder = "$dir"
    plugins_folder = "$lib/plugins"
    transports_folder = "$lib/transports"
    events_folder = "$lib/events"
    loggers_folder = "$lib/loggers"
    interface = "$host"
    debug_level = 3
    session_timeout = 120
}
certificates: {
}
media: {
}
nat: {
    ice_enforce_list = "$host"
    full_trickle = false
}
plugins: {
    disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videoroom.so,libjanus_voicemail.so"
}
transports: {
    disable = "libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}
events: {
    broadcast = false
}
loggers: {
    disable = "libjanus_jsonlog.so"
}
EOF
    cat >"$dir/janus.transport.websockets.jcfg" <<EOF
general: {
    json = "compact"
    ws = true
    ws_port = $port
    ws_ip = "$host"
    wss = false
}
admin: {
    admin_ws = false
    admin_wss = false
}
EOF
    printf 'general: {\n}\n' >"$dir/janus.plugin.videocall.jcfg"
}
