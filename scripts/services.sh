#!/usr/bin/env bash
# Real services for mizugiwa's integration tests, as plain processes on loopback:
#   Kafka 4.1 (KRaft, Maven Central jars), ClickHouse server (Debian 18.16),
#   Postfix 3.7 (private instance, `postfix -c`), Sendmail 8.17 (unpacked .debs + private rsyslogd).
#
#   scripts/services.sh up     [kafka|clickhouse|postfix|sendmail ...]   (default: all)
#   scripts/services.sh down   [names...]    stops exactly what `up` started (pid files)
#   scripts/services.sh status [names...]    exit 1 if any named service is not answering
#   scripts/services.sh reset  [names...]    down + delete that service's state (not caches)
#
# Idempotent; installs what is missing (apt, Maven); runs as root. State lives under
# <repo>/var/services/<name>/ (logs: *.log there), caches under <repo>/var/cache and ~/.m2.
# After up/down it writes var/services/services.json with the endpoints of the services
# that answer (read it with test/services/services.ts). Ports can be moved with env vars:
# MZ_KAFKA_PORT MZ_KAFKA_CONTROLLER_PORT MZ_CLICKHOUSE_HTTP_PORT MZ_CLICKHOUSE_TCP_PORT
# MZ_POSTFIX_PORT MZ_SENDMAIL_PORT (defaults 19092 19093 18123 19000 2525 2526);
# MZ_KAFKA_VERSION picks another Kafka release (default 4.1.2). See scripts/services/README.md.
set -euo pipefail
umask 022
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TPL=$ROOT/scripts/services
VAR=$ROOT/var/services
CACHE=$ROOT/var/cache
ALL=(kafka clickhouse postfix sendmail)

KAFKA_VERSION=${MZ_KAFKA_VERSION:-4.1.2}
KAFKA_PORT=${MZ_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${MZ_KAFKA_CONTROLLER_PORT:-19093}
CH_HTTP_PORT=${MZ_CLICKHOUSE_HTTP_PORT:-18123}
CH_TCP_PORT=${MZ_CLICKHOUSE_TCP_PORT:-19000}
POSTFIX_PORT=${MZ_POSTFIX_PORT:-2525}
SENDMAIL_PORT=${MZ_SENDMAIL_PORT:-2526}

die() { echo "services.sh: $*" >&2; exit 1; }
note() { echo "  $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { [ -s "$1" ] && head -n1 "$1" | tr -dc '0-9' || true; }

# ---------------------------------------------------------------- probes (no curl, no nc)
# tcp_open PORT -> 0 when something accepts on 127.0.0.1:PORT
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# smtp_banner PORT -> prints the 220 banner (then QUITs) or fails
smtp_banner() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  if ! IFS= read -r -t 5 line <&3; then exec 3>&-; return 1; fi
  printf 'QUIT\r\n' >&3 || true
  timeout 2 cat <&3 >/dev/null 2>&1 || true
  exec 3>&- 3<&-
  line=${line%$'\r'}
  [[ $line == 220* ]] && echo "$line"
}
# http_get PORT PATH -> prints the body
http_get() {
  local out
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  out=$(timeout 5 cat <&3) || true
  exec 3>&- 3<&-
  printf '%s' "${out#*$'\r\n\r\n'}"
}

# wait_for NAME SECONDS PID LOG CMD... : poll CMD until it succeeds, the pid dies or time is up
wait_for() {
  local name=$1 secs=$2 pid=$3 log=$4; shift 4
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -n "$pid" ] && ! alive "$pid"; then
      echo "services.sh: $name died while starting; last lines of $log:" >&2
      tail -n 30 "$log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.3
  done
  echo "services.sh: $name did not answer within ${secs}s; last lines of $log:" >&2
  tail -n 30 "$log" >&2 2>/dev/null || true
  return 1
}

# stop_pid NAME PID [SECONDS]: TERM, wait, then KILL
stop_pid() {
  local name=$1 pid=$2 secs=${3:-30} i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do alive "$pid" || return 0; sleep 0.1; done
  echo "services.sh: $name (pid $pid) ignored TERM for ${secs}s; killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

# ---------------------------------------------------------------- apt
APT_LOG=$VAR/apt.log
apt_updated=0
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_update_once() {
  ((apt_updated)) && return 0
  note "apt-get update ..."
  apt-get -q -o DPkg::Lock::Timeout=900 update >>"$APT_LOG" 2>&1 9>&- || die "apt-get update failed (see $APT_LOG)"
  apt_updated=1
}
# lists present? (a fresh machine never ran apt-get update)
apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null || compgen -G '/var/lib/apt/lists/*_Packages.*' >/dev/null; }
apt_ensure() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  note "installing ${missing[*]} (apt, log $APT_LOG) ..."
  if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
    # Local only: the system Postfix (if its postinst starts it) delivers locally, relays nothing.
    debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string mx.example.test
EOF
  fi
  apt_lists_present || apt_update_once
  if ! DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=900 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      install --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 9>&-; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=900 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      install --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 9>&- ||
      die "apt-get install ${missing[*]} failed (see $APT_LOG)"
  fi
}

# packages each service needs (installed in one apt run before anything starts)
apt_needs() {
  case $1 in
    kafka)
      command -v java >/dev/null || echo openjdk-17-jre-headless
      command -v mvn >/dev/null || echo maven ;;
    clickhouse) echo clickhouse-server ;;
    postfix) echo postfix postfix-lmdb swaks ;;   # lmdb: the responder's lmdb: table test
    # the shared libraries of sendmail-bin (Debian 12), which is unpacked, not installed
    sendmail) echo m4 rsyslog swaks libdb5.3 libldap-2.5-0 liblockfile1 libmilter1.0.1 libnsl2 libsasl2-2 libssl3 libwrap0 ;;
  esac
}

# ================================================================ Kafka
KAFKA_DIR=$VAR/kafka
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
MVN_DEPENDENCY_PLUGIN=3.8.1
kafka_pid() { pidof_file "$KAFKA_DIR/kafka.pid"; }
kafka_probe() { node "$TPL/kafka/probe.mjs" "127.0.0.1:$KAFKA_PORT" 3000; }
kafka_where() { echo "PLAINTEXT 127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT), Kafka $KAFKA_VERSION"; }
kafka_json() { printf '"kafka": {"brokers": ["127.0.0.1:%s"], "version": "%s", "log_dir": "%s"}' "$KAFKA_PORT" "$KAFKA_VERSION" "$KAFKA_DIR"; }
kafka_install() {
  command -v node >/dev/null || die "node is needed (Kafka readiness probe)"
  [ -f "$KAFKA_LIBS/.complete" ] && return 0
  note "resolving Kafka $KAFKA_VERSION jars (Maven, log $KAFKA_DIR/maven.log) ..."
  local t; t=$(now)
  rm -rf "$KAFKA_LIBS.tmp"
  mvn -B -q -f "$TPL/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MVN_DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp" \
    >"$KAFKA_DIR/maven.log" 2>&1 || { tail -n 30 "$KAFKA_DIR/maven.log" >&2; die "Maven could not resolve Kafka $KAFKA_VERSION"; }
  ls "$KAFKA_LIBS.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven resolved no kafka_2.13 jar (see $KAFKA_DIR/maven.log)"
  rm -rf "$KAFKA_LIBS"; mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"; touch "$KAFKA_LIBS/.complete"
  note "Kafka jars in $KAFKA_LIBS ($(since "$t"))"
}
kafka_up() {
  local pid; pid=$(kafka_pid)
  if alive "$pid"; then
    wait_for kafka 60 "$pid" "$KAFKA_DIR/server.log" kafka_probe || return 1
    return 0
  fi
  tcp_open "$KAFKA_PORT" && die "kafka: 127.0.0.1:$KAFKA_PORT is taken by a process this script did not start"
  kafka_install
  sed -e "s#@DATA@#$KAFKA_DIR/data#g" -e "s/@BROKER_PORT@/$KAFKA_PORT/g" \
      -e "s/@CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT/g" "$TPL/kafka/server.properties" >"$KAFKA_DIR/server.properties"
  cp "$TPL/kafka/log4j2.properties" "$KAFKA_DIR/log4j2.properties"
  local cp="$KAFKA_LIBS/*"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    [ -s "$KAFKA_DIR/cluster.id" ] ||
      java -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_DIR/format.log" | tail -n1 >"$KAFKA_DIR/cluster.id"
    mkdir -p "$KAFKA_DIR/data"
    java -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR" -cp "$cp" \
      kafka.tools.StorageTool format --standalone -t "$(cat "$KAFKA_DIR/cluster.id")" \
      -c "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/format.log" 2>&1 ||
      { tail -n 20 "$KAFKA_DIR/format.log" >&2; die "kafka: formatting the KRaft log dir failed"; }
  fi
  # setsid: not in the caller's process group; 9>&-: do not inherit the services lock
  setsid nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$KAFKA_DIR" \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >"$KAFKA_DIR/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_DIR/kafka.pid"
  wait_for kafka 120 "$!" "$KAFKA_DIR/server.log" kafka_probe
}
kafka_down() { stop_pid kafka "$(kafka_pid)" 40; rm -f "$KAFKA_DIR/kafka.pid"; }

# ================================================================ ClickHouse
CH_DIR=$VAR/clickhouse
clickhouse_pid() { pidof_file "$CH_DIR/clickhouse.pid"; }
clickhouse_probe() { [ "$(http_get "$CH_HTTP_PORT" /ping)" = "Ok." ]; }
clickhouse_where() { echo "http://127.0.0.1:$CH_HTTP_PORT (native tcp 127.0.0.1:$CH_TCP_PORT), ClickHouse $(http_get "$CH_HTTP_PORT" '/?query=SELECT%20version()' 2>/dev/null | tr -d '\n')"; }
clickhouse_json() { printf '"clickhouse": {"url": "http://127.0.0.1:%s", "tcp": "127.0.0.1:%s", "log_dir": "%s"}' "$CH_HTTP_PORT" "$CH_TCP_PORT" "$CH_DIR"; }
clickhouse_up() {
  local pid; pid=$(clickhouse_pid)
  if alive "$pid"; then wait_for clickhouse 30 "$pid" "$CH_DIR/clickhouse-server.err.log" clickhouse_probe; return; fi
  tcp_open "$CH_HTTP_PORT" && die "clickhouse: 127.0.0.1:$CH_HTTP_PORT is taken by a process this script did not start"
  command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed"
  mkdir -p "$CH_DIR/data"
  sed -e "s#@DIR@#$CH_DIR#g" -e "s/@HTTP_PORT@/$CH_HTTP_PORT/g" -e "s/@TCP_PORT@/$CH_TCP_PORT/g" \
    "$TPL/clickhouse/config.xml" >"$CH_DIR/config.xml"
  sed -e "s#@DIR@#$CH_DIR#g" "$TPL/clickhouse/users.xml" >"$CH_DIR/users.xml"
  rm -f "$CH_DIR/clickhouse.pid"
  (cd "$CH_DIR" && clickhouse-server --config-file="$CH_DIR/config.xml" --pid-file="$CH_DIR/clickhouse.pid" --daemon \
    >>"$CH_DIR/start.log" 2>&1 </dev/null 9>&-) || { tail -n 20 "$CH_DIR/start.log" >&2; die "clickhouse-server failed to start"; }
  local i; for ((i = 0; i < 100; i++)); do [ -s "$CH_DIR/clickhouse.pid" ] && break; sleep 0.1; done
  wait_for clickhouse 60 "$(clickhouse_pid)" "$CH_DIR/clickhouse-server.err.log" clickhouse_probe
}
clickhouse_down() { stop_pid clickhouse "$(clickhouse_pid)" 30; rm -f "$CH_DIR/clickhouse.pid"; }

# ================================================================ Postfix
PF_DIR=$VAR/postfix
PF_ETC=$PF_DIR/etc
postfix_pid() { pidof_file "$PF_DIR/spool/pid/master.pid"; }
postfix_probe() { smtp_banner "$POSTFIX_PORT"; }
postfix_where() { echo "smtp 127.0.0.1:$POSTFIX_PORT, maillog $PF_DIR/maillog, access map hash:$PF_DIR/access"; }
postfix_json() {
  printf '"postfix": {"smtp": "127.0.0.1:%s", "maillog": "%s", "access_map": "%s", "access_map_type": "hash", "config_dir": "%s", "postmap": "%s", "postfix": "%s"}' \
    "$POSTFIX_PORT" "$PF_DIR/maillog" "$PF_DIR/access" "$PF_ETC" "$(command -v postmap || echo /usr/sbin/postmap)" "$(command -v postfix || echo /usr/sbin/postfix)"
}
postfix_config() {
  mkdir -p "$PF_ETC" "$PF_DIR/mail"
  install -d -m 0755 -o root -g root "$PF_DIR/spool"
  sed -e "s#@DIR@#$PF_DIR#g" "$TPL/postfix/main.cf" >"$PF_ETC/main.cf.new"
  sed -e "s/@SMTP_PORT@/$POSTFIX_PORT/g" "$TPL/postfix/master.cf" >"$PF_ETC/master.cf.new"
  local changed=0 f
  for f in main.cf master.cf; do
    if cmp -s "$PF_ETC/$f.new" "$PF_ETC/$f"; then rm -f "$PF_ETC/$f.new"; else mv "$PF_ETC/$f.new" "$PF_ETC/$f"; changed=1; fi
  done
  if ! cmp -s "$TPL/postfix/aliases" "$PF_ETC/aliases" || [ ! -f "$PF_ETC/aliases.db" ]; then
    cp "$TPL/postfix/aliases" "$PF_ETC/aliases"; postalias "hash:$PF_ETC/aliases"
  fi
  # the access map belongs to the tests / the respond agent once it exists: create, never clobber
  [ -f "$PF_DIR/access" ] ||
    printf '# mizugiwa test Postfix: check_client_access hash:%s\n# CLIENT ACTION, e.g. 127.0.0.3 450 4.7.1 Try later; then: postmap hash:%s\n' \
      "$PF_DIR/access" "$PF_DIR/access" >"$PF_DIR/access"
  [ "$PF_DIR/access.db" -nt "$PF_DIR/access" ] || postmap "hash:$PF_DIR/access"
  return $((1 - changed)) # 0 = config changed
}
postfix_up() {
  command -v postfix >/dev/null || die "postfix is not installed"
  local changed=1
  postfix_config && changed=0
  if postfix -c "$PF_ETC" status >/dev/null 2>&1; then
    if ((changed == 0)); then note "postfix: config changed, reloading"; postfix -c "$PF_ETC" reload >/dev/null 2>&1 9>&-; fi
    wait_for postfix 30 "$(postfix_pid)" "$PF_DIR/maillog" postfix_probe; return
  fi
  tcp_open "$POSTFIX_PORT" && die "postfix: 127.0.0.1:$POSTFIX_PORT is taken by a process this script did not start"
  # `postfix check` creates the queue subdirectories with the ownerships Postfix wants
  postfix -c "$PF_ETC" check >>"$PF_DIR/start.log" 2>&1 ||
    { tail -n 20 "$PF_DIR/start.log" "$PF_DIR/maillog" >&2 2>/dev/null; die "postfix check failed"; }
  postfix -c "$PF_ETC" start >>"$PF_DIR/start.log" 2>&1 </dev/null 9>&- ||
    { tail -n 20 "$PF_DIR/start.log" "$PF_DIR/maillog" >&2 2>/dev/null; die "postfix start failed"; }
  wait_for postfix 30 "" "$PF_DIR/maillog" postfix_probe
}
postfix_down() {
  if command -v postfix >/dev/null && [ -f "$PF_ETC/main.cf" ] && postfix -c "$PF_ETC" status >/dev/null 2>&1; then
    local pid; pid=$(postfix_pid)
    postfix -c "$PF_ETC" stop >>"$PF_DIR/start.log" 2>&1 || true
    local i; for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    stop_pid postfix "$pid" 5
  fi
}

# ================================================================ Sendmail
# Sendmail refuses maps and files below a directory that group/other can write, so its state
# directory must sit in a safe chain; the repo's var dir when it is, else /srv/mizugiwa-<hash>.
path_chain_safe() {
  local p=$1 mode owner
  while :; do
    if [ -e "$p" ]; then
      mode=$(stat -Lc '%a' "$p"); owner=$(stat -Lc '%u' "$p")
      [ "$owner" = 0 ] || return 1
      (((8#$mode & 8#022) == 0)) || return 1
    fi
    [ "$p" = / ] && return 0
    p=$(dirname "$p")
  done
}
if path_chain_safe "$VAR"; then
  SM_DIR=$VAR/sendmail
else
  SM_DIR=/srv/mizugiwa-$(printf '%s' "$ROOT" | sha1sum | cut -c1-10)/sendmail
fi
SM_ROOT=$SM_DIR/root
SM_BIN=$SM_ROOT/usr/libexec/sendmail
SM_LIB=$SM_ROOT/usr/lib/x86_64-linux-gnu
SM_CF=$SM_DIR/etc/sendmail.cf
SM_LOG=$SM_DIR/maillog
SM_DEBS=(sendmail-bin sendmail-cf) # conflict with postfix as packages: unpacked with dpkg -x
sendmail_pid() { pidof_file "$SM_DIR/run/sendmail.pid"; }
rsyslog_pid() { pidof_file "$SM_DIR/run/rsyslogd.pid"; }
sendmail_probe() { alive "$(rsyslog_pid)" && smtp_banner "$SENDMAIL_PORT"; }
sendmail_where() { echo "smtp 127.0.0.1:$SENDMAIL_PORT, maillog $SM_LOG (rsyslogd pid $(rsyslog_pid)), access map hash:$SM_DIR/etc/access"; }
sendmail_json() {
  printf '"sendmail": {"smtp": "127.0.0.1:%s", "maillog": "%s", "access_map": "%s", "access_map_type": "hash", "cf": "%s", "makemap": "%s", "sendmail": "%s", "lib_dir": "%s", "env": {"LD_LIBRARY_PATH": "%s"}}' \
    "$SENDMAIL_PORT" "$SM_LOG" "$SM_DIR/etc/access" "$SM_CF" "$SM_DIR/bin/makemap" "$SM_DIR/bin/sendmail" "$SM_LIB" "$SM_LIB"
}
sendmail_install() {
  if [ ! -x "$SM_BIN/sendmail" ]; then
    local debs=$CACHE/sendmail-debs
    mkdir -p "$debs"
    if ! compgen -G "$debs/sendmail-bin_*.deb" >/dev/null || ! compgen -G "$debs/sendmail-cf_*.deb" >/dev/null; then
      note "downloading ${SM_DEBS[*]} (apt-get download) ..."
      apt_lists_present || apt_update_once
      (cd "$debs" && apt-get -q download "${SM_DEBS[@]}" >>"$APT_LOG" 2>&1) ||
        { apt_update_once; (cd "$debs" && apt-get -q download "${SM_DEBS[@]}" >>"$APT_LOG" 2>&1) ||
          die "apt-get download ${SM_DEBS[*]} failed (see $APT_LOG)"; }
    fi
    rm -rf "$SM_ROOT"; mkdir -p "$SM_ROOT"
    local f; for f in "$debs"/*.deb; do dpkg -x "$f" "$SM_ROOT"; done
    [ -x "$SM_BIN/sendmail" ] || die "sendmail binary missing after unpacking $debs"
    local missing
    missing=$(LD_LIBRARY_PATH=$SM_LIB ldd "$SM_BIN/sendmail" "$SM_BIN/makemap" | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' ')
    [ -z "$missing" ] || { rm -rf "$SM_ROOT"; die "sendmail needs shared libraries that are not installed: $missing"; }
  fi
  # wrappers with the private libraries, namespace and config, for tests and the respond agent
  mkdir -p "$SM_DIR/bin"
  sed -e "s#@DIR@#$SM_DIR#g" -e "s#@LIB@#$SM_LIB#g" "$TPL/sendmail/sm-ns" >"$SM_DIR/bin/sm-ns"
  printf '#!/bin/sh\n# makemap of the unpacked test Sendmail (its libraries, its cf)\nLD_LIBRARY_PATH=%s exec %s -C %s "$@"\n' \
    "$SM_LIB" "$SM_BIN/makemap" "$SM_CF" >"$SM_DIR/bin/makemap"
  printf '#!/bin/sh\n# the unpacked test Sendmail with its cf (see sm-ns)\nexec %s %s -C %s "$@"\n' \
    "$SM_DIR/bin/sm-ns" "$SM_BIN/sendmail" "$SM_CF" >"$SM_DIR/bin/sendmail"
  sed -e "s#@DIR@#$SM_DIR#g" "$TPL/sendmail/deliver" >"$SM_DIR/bin/deliver"
  chmod 0755 "$SM_DIR/bin/sm-ns" "$SM_DIR/bin/makemap" "$SM_DIR/bin/sendmail" "$SM_DIR/bin/deliver"
}
sendmail_config() {
  mkdir -p "$SM_DIR/etc" "$SM_DIR/run" "$SM_DIR/mail"
  install -d -m 0700 "$SM_DIR/queue"
  sed -e "s#@DIR@#$SM_DIR#g" -e "s/@SMTP_PORT@/$SENDMAIL_PORT/g" "$TPL/sendmail/sendmail.mc" >"$SM_DIR/etc/sendmail.mc"
  m4 -D_CF_DIR_="$SM_ROOT/usr/share/sendmail/cf/" "$SM_DIR/etc/sendmail.mc" >"$SM_CF.new"
  SM_CF_CHANGED=0
  # (the cf carries a "built by ... on DATE" line: compare without it)
  if [ -f "$SM_CF" ] && cmp -s <(grep -v '^##### built by' "$SM_CF.new") <(grep -v '^##### built by' "$SM_CF"); then
    rm -f "$SM_CF.new"
  else
    mv "$SM_CF.new" "$SM_CF"; SM_CF_CHANGED=1
  fi
  printf 'hosts files\naliases files\n' >"$SM_DIR/etc/service.switch"
  printf '127.0.0.1 mx2.example.test mx2 localhost %s\n' "$(uname -n)" >"$SM_DIR/etc/hosts"
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n' >"$SM_DIR/etc/nsswitch.conf"
  echo example.test >"$SM_DIR/etc/local-host-names"
  : >"$SM_DIR/etc/trusted-users"
  if ! cmp -s "$TPL/sendmail/aliases" "$SM_DIR/etc/aliases" || [ ! -f "$SM_DIR/etc/aliases.db" ]; then
    cp "$TPL/sendmail/aliases" "$SM_DIR/etc/aliases"
    "$SM_DIR/bin/sendmail" -bi >>"$SM_DIR/start.log" 2>&1 || die "sendmail -bi (aliases) failed"
  fi
  [ -f "$SM_DIR/etc/access" ] ||
    printf '# mizugiwa test Sendmail: FEATURE(access_db) hash:%s\n# e.g. Connect:127.0.0.5<TAB>ERROR:4.7.1:"450 Try later"; then: %s hash %s < %s\n' \
      "$SM_DIR/etc/access" "$SM_DIR/bin/makemap" "$SM_DIR/etc/access" "$SM_DIR/etc/access" >"$SM_DIR/etc/access"
  [ "$SM_DIR/etc/access.db" -nt "$SM_DIR/etc/access" ] || "$SM_DIR/bin/makemap" hash "$SM_DIR/etc/access" <"$SM_DIR/etc/access"
}
# Is someone listening on /dev/log? (a stale socket or a plain file does not count)
devlog_live() { [ -S /dev/log ] && logger --socket-errors=on -u /dev/log -p mail.debug -t mizugiwa-services "probe" 2>/dev/null; }
# Sendmail logs only through syslog(3), i.e. /dev/log. Our private rsyslogd always listens on
# SM_DIR/run/log.sock; Sendmail runs in a private mount namespace (unshare -m) where /dev/log,
# /etc/hosts and /etc/nsswitch.conf are bind-mounted (so it reaches our rsyslogd and does no
# DNS). When /dev/log does not exist at all, rsyslogd also takes /dev/log (nothing to bind onto).
rsyslog_up() {
  alive "$(rsyslog_pid)" && return 0
  command -v rsyslogd >/dev/null || die "rsyslogd is not installed"
  local syssock='SysSock.Use="off"'
  rm -f "$SM_DIR/run/owns-dev-log"
  if ! devlog_live; then
    if [ -e /dev/log ] || [ -L /dev/log ]; then
      [ -S /dev/log ] || die "sendmail: /dev/log exists but is no socket; remove it"
    fi
    syssock='SysSock.Use="on" SysSock.Name="/dev/log"'
    touch "$SM_DIR/run/owns-dev-log"
  fi
  sed -e "s#@RUN@#$SM_DIR/run#g" -e "s#@SOCKET@#$SM_DIR/run/log.sock#g" -e "s#@MAILLOG@#$SM_LOG#g" \
      -e "s#@SYSSOCK@#$syssock#g" "$TPL/sendmail/rsyslog.conf" >"$SM_DIR/etc/rsyslog.conf"
  rm -f "$SM_DIR/run/rsyslogd.pid"
  rsyslogd -f "$SM_DIR/etc/rsyslog.conf" -i "$SM_DIR/run/rsyslogd.pid" >>"$SM_DIR/rsyslogd.log" 2>&1 </dev/null 9>&- ||
    { tail -n 20 "$SM_DIR/rsyslogd.log" >&2; die "rsyslogd failed to start"; }
  local i; for ((i = 0; i < 50; i++)); do [ -S "$SM_DIR/run/log.sock" ] && [ -s "$SM_DIR/run/rsyslogd.pid" ] && return 0; sleep 0.1; done
  die "rsyslogd did not create $SM_DIR/run/log.sock (see $SM_DIR/rsyslogd.log)"
}
sendmail_up() {
  local pid; pid=$(sendmail_pid)
  sendmail_install
  sendmail_config
  rsyslog_up
  if alive "$pid"; then
    if ((SM_CF_CHANGED)); then note "sendmail: cf changed, restarting daemon (HUP)"; kill -HUP "$pid"; sleep 1; pid=$(sendmail_pid); fi
    wait_for sendmail 30 "$pid" "$SM_LOG" sendmail_probe; return
  fi
  tcp_open "$SENDMAIL_PORT" && die "sendmail: 127.0.0.1:$SENDMAIL_PORT is taken by a process this script did not start"
  local mark=0; [ -f "$SM_LOG" ] && mark=$(wc -l <"$SM_LOG")
  rm -f "$SM_DIR/run/sendmail.pid"
  if ! unshare -m --propagation private true 2>/dev/null; then
    # no mount namespaces: only works when our rsyslogd owns /dev/log; names resolve via DNS
    [ -e "$SM_DIR/run/owns-dev-log" ] || die "sendmail: /dev/log belongs to another syslog and unshare -m is not permitted"
    echo "services.sh: warning: unshare -m not permitted; sendmail uses the system resolver" >&2
  fi
  "$SM_DIR/bin/sendmail" -bd -q30m >>"$SM_DIR/start.log" 2>&1 </dev/null 9>&- ||
    { tail -n 20 "$SM_DIR/start.log" >&2; die "sendmail failed to start"; }
  local i; for ((i = 0; i < 100; i++)); do [ -s "$SM_DIR/run/sendmail.pid" ] && break; sleep 0.1; done
  wait_for sendmail 30 "$(sendmail_pid)" "$SM_LOG" sendmail_probe || return 1
  # proves the syslog path: sendmail's own start line must reach the maillog
  for ((i = 0; i < 50; i++)); do tail -n +"$((mark + 1))" "$SM_LOG" 2>/dev/null | grep -q 'starting daemon' && return 0; sleep 0.1; done
  die "sendmail answers but its log lines do not reach $SM_LOG"
}
sendmail_down() {
  stop_pid sendmail "$(sendmail_pid)" 15; rm -f "$SM_DIR/run/sendmail.pid"
  stop_pid rsyslogd "$(rsyslog_pid)" 10; rm -f "$SM_DIR/run/rsyslogd.pid"
  # rsyslogd removes its sockets itself; drop a /dev/log it created if it is left dead
  if [ -e "$SM_DIR/run/owns-dev-log" ]; then
    [ -S /dev/log ] && ! devlog_live && rm -f /dev/log
    rm -f "$SM_DIR/run/owns-dev-log"
  fi
}

# ================================================================ commands
pid_of() {
  case $1 in
    kafka) kafka_pid ;; clickhouse) clickhouse_pid ;; postfix) postfix_pid ;; sendmail) sendmail_pid ;;
  esac
}
running() { alive "$(pid_of "$1")"; }

write_json() {
  local s first=1 out=$VAR/services.json
  {
    echo '{'
    for s in "${ALL[@]}"; do
      running "$s" && "${s}_probe" >/dev/null 2>&1 || continue
      ((first)) || echo ','
      printf '  '; "${s}_json"; first=0
    done
    echo
    echo '}'
  } >"$out.tmp"
  mv "$out.tmp" "$out"
}

cmd_up() {
  local s pkgs=() t0 t
  t0=$(now)
  # a second up with everything answering must stay fast: apt only for what is missing
  for s in "$@"; do pkgs+=($(apt_needs "$s")); done
  ((${#pkgs[@]} == 0)) || apt_ensure $(printf '%s\n' "${pkgs[@]}" | sort -u)
  local failed=0
  for s in "$@"; do
    t=$(now)
    mkdir -p "$VAR/$s"
    if running "$s" && "${s}_probe" >/dev/null 2>&1 && [ "$s" != postfix ] && [ "$s" != sendmail ]; then
      printf '%-11s up (already)  %s  pid %s\n' "$s" "$("${s}_where")" "$(pid_of "$s")"
      continue
    fi
    local how; if running "$s"; then how=already; else how=; fi
    if "${s}_up"; then
      printf '%-11s up (%s)  %s  pid %s\n' "$s" "${how:-$(since "$t")}" "$("${s}_where")" "$(pid_of "$s")"
    else
      printf '%-11s FAILED (%s), logs in %s\n' "$s" "$(since "$t")" "$VAR/$s" >&2
      failed=1
    fi
  done
  write_json
  echo "endpoints: $VAR/services.json  ($(since "$t0") total)"
  return $failed
}

cmd_down() {
  local s
  for s in "$@"; do
    if running "$s" || [ "$s" = postfix ] || [ "$s" = sendmail ]; then
      "${s}_down"
    fi
    printf '%-11s down\n' "$s"
  done
  [ -d "$VAR" ] && write_json
  return 0
}

cmd_status() {
  local s pid bad=0
  for s in "$@"; do
    pid=$(pid_of "$s")
    if alive "$pid"; then
      if "${s}_probe" >/dev/null 2>&1; then
        printf '%-11s answering      pid %-7s %s\n' "$s" "$pid" "$("${s}_where")"
      else
        printf '%-11s NOT ANSWERING  pid %-7s %s\n' "$s" "$pid" "$("${s}_where")"; bad=1
      fi
    else
      printf '%-11s down\n' "$s"; bad=1
    fi
  done
  return $bad
}

cmd_reset() {
  local s
  cmd_down "$@" >/dev/null
  for s in "$@"; do
    case $s in
      sendmail)
        rm -rf "$SM_DIR"
        [ "$SM_DIR" = "$VAR/sendmail" ] || { rm -f "$VAR/sendmail"; rmdir "$(dirname "$SM_DIR")" 2>/dev/null || true; } ;;
      *) rm -rf "${VAR:?}/$s" ;;
    esac
    printf '%-11s reset (state removed)\n' "$s"
  done
  write_json
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  local names=("$@") s
  ((${#names[@]})) || names=("${ALL[@]}")
  for s in "${names[@]}"; do
    [[ " ${ALL[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${ALL[*]})"
  done
  case $cmd in
    up | down | reset) [ "$(id -u)" = 0 ] || die "$cmd needs root" ;;
    status) ;;
    *) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
  mkdir -p "$VAR" "$CACHE"
  [ "$SM_DIR" = "$VAR/sendmail" ] || { mkdir -p "$SM_DIR"; [ -e "$VAR/sendmail" ] || ln -s "$SM_DIR" "$VAR/sendmail"; }
  # one up/down at a time (several engineers share this working tree)
  exec 9>"$VAR/.lock"
  if ! flock -n 9; then
    echo "services.sh: waiting for another services.sh run (lock $VAR/.lock) ..."
    flock -w 1200 9 || die "timed out waiting for the lock"
  fi
  "cmd_$cmd" "${names[@]}"
}

main "$@"
