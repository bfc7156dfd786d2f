# Sourced by the benchmark scripts: InspIRCd 3 (Debian's package) as the peer, its config written
# here, loopback only, started in the foreground and stopped by its PID. Limits are lifted the
# way ours are for benchmarks: no flood penalties, no DNS or ident lookups, large queues.
# Needs OUT and IRC_PORT; sets INSPIRCD, and PID when started.
INSPIRCD=$(command -v inspircd || echo /usr/sbin/inspircd)
[ -x "$INSPIRCD" ] || { echo "$(basename "$0"): install inspircd (Debian's package)" >&2; exit 1; }
cat > "$OUT/inspircd.conf" <<CONF
<config format="xml">
<server name="bench.local" description="loopback benchmark peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="$IRC_PORT" type="clients">
<connect name="bench" allow="127.0.0.1" maxconnwait="300" timeout="300" pingfreq="600" sendq="16777216" softsendq="16777216"
 recvq="262144" threshold="1000000" commandrate="1000000000" fakelag="off" localmax="100000" globalmax="100000" maxchans="20"
 limit="100000" useident="no" resolvehostnames="no">
<options defaultmodes="nt">
<performance softlimit="20000" somaxconn="4096" clonesonconnect="no" quietbursts="yes">
<pid file="$OUT/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$OUT/inspircd.log">
CONF
start_inspircd() {
  local root=(); [ "$(id -u)" -eq 0 ] && root=(--runasroot)
  "$INSPIRCD" --config="$OUT/inspircd.conf" --nofork "${root[@]}" >"$OUT/inspircd.out" 2>&1 &
  PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$IRC_PORT") 2>/dev/null && break; sleep 0.1; done
  PORT=$IRC_PORT; PROTO=irc
}
