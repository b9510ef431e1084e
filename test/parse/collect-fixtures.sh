#!/usr/bin/env bash
# Drives the test Postfix (127.0.0.1:2525) and Sendmail (127.0.0.1:2526) started by
# scripts/services.sh with swaks and raw SMTP sessions from different 127.0.0.X clients, then copies
# the log lines they wrote into var/parse/collected/{postfix,sendmail}.log.
# The committed fixtures (test/parse/testdata/*.ndjson) are static: run this by hand, turn the new
# lines into cases with test/parse/make-fixtures.mjs and review every expectation before committing.
set -euo pipefail
cd "$(dirname "$0")/../.."
services=var/services/services.json
[ -f "$services" ] || { echo "services not up: bash scripts/services.sh up postfix sendmail" >&2; exit 2; }
pf_log=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["postfix"]["maillog"])' "$services")
sm_log=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["sendmail"]["maillog"])' "$services")
out=var/parse/collected
mkdir -p "$out"
pf_start=$(stat -c %s "$pf_log")
sm_start=$(stat -c %s "$sm_log")

# raw SRC PORT [--pregreet] LINE...: one SMTP session with exactly these client lines
raw() {
  python3 - "$@" <<'PY'
import socket, sys, time
src, port, *lines = sys.argv[1:]
pregreet = bool(lines) and lines[0] == '--pregreet'
if pregreet: lines = lines[1:]
s = socket.socket(); s.settimeout(10); s.bind((src, 0)); s.connect(('127.0.0.1', int(port)))
def rd():
    try: return s.recv(65536)
    except Exception: return b''
if pregreet: s.sendall(b'EHLO pregreet.test\r\n')
rd()
for l in lines:
    if l == '<close>': break
    if l == '<pipeline>': continue
    s.sendall(l.replace('\\r\\n', '\r\n').encode() + b'\r\n'); time.sleep(0.05); rd()
s.close()
PY
}

sw() { swaks --server "127.0.0.1:$1" --local-interface "$2" "${@:3}" >/dev/null 2>&1 || true; }

for port in 2525 2526; do
  sw $port 127.0.0.21 --from sender@client.test --to alice@example.test
  sw $port 127.0.0.22 --from sender@client.test --to postmaster@example.test --header 'Subject: fixture'
  sw $port 127.0.0.23 --from '' --to alice@example.test
  sw $port 127.0.0.24 --from harvest@bot.test --to nosuchuser@example.test --quit-after RCPT
  sw $port 127.0.0.24 --from harvest@bot.test --to nobody1@example.test --quit-after RCPT
  sw $port 127.0.0.25 --from spam@bot.test --to victim@other.test --quit-after RCPT
  sw $port 127.0.0.26 --from a@client.test --to alice@example.test --quit-after MAIL
  sw $port 127.0.0.26 --from a@client.test --to alice@example.test --quit-after HELO
  sw $port 127.0.0.26 --from a@client.test --to alice@example.test --quit-after CONNECT
  sw $port 127.0.0.27 --from a@client.test --to alice@example.test,nosuch2@example.test,bob@example.test
  sw $port 127.0.0.28 --from a@client.test --to alice@example.test --auth LOGIN --auth-user bob --auth-password wrong
  sw $port 127.0.0.1 --from root@example.test --to someone@other.test
  sw $port 127.0.0.29 --from a@client.test --to alice@example.test --pipeline
  raw 127.0.0.30 $port 'GET / HTTP/1.1' 'Host: x'
  raw 127.0.0.31 $port --pregreet 'MAIL FROM:<p@bot.test>' 'QUIT'
  raw 127.0.0.32 $port 'EHLO bot.test' 'VRFY nosuchuser' 'VRFY alice' 'EXPN alice' 'QUIT'
  raw 127.0.0.33 $port 'EHLO bot.test' 'MAIL FROM:<a@bot.test>' 'RCPT TO:<alice@example.test>' 'DATA' 'Subject: cut' '<close>'
  raw 127.0.0.34 $port 'HELO bot.test' 'FOO' 'BAR' 'BAZ' 'QUX' 'XYZZY' 'NOOP x' 'AAAA' 'BBBB' 'CCCC' 'DDDD' 'EEEE' 'FFFF' 'GGGG' 'HHHH' 'IIII' 'JJJJ' 'KKKK' 'LLLL' 'MMMM' 'NNNN' 'OOOO' 'QUIT'
  raw 127.0.0.35 $port 'EHLO bot.test' 'MAIL FROM:<a@bot.test>\r\nRCPT TO:<alice@example.test>\r\nDATA' 'QUIT'
  raw 127.0.0.36 $port 'EHLO bot.test' 'MAIL FROM:<bad address>' 'MAIL FROM:<a@bot.test>' 'RCPT TO:<x y@example.test>' 'RCPT TO:<nosuch3@example.test>' 'RSET' 'QUIT'
  raw 127.0.0.37 $port 'HELO' 'EHLO' 'HELO bot.test' 'RCPT TO:<alice@example.test>' 'DATA' 'QUIT'
  raw 127.0.0.38 $port 'EHLO bot.test' 'AUTH PLAIN AGJvYgB3cm9uZw==' 'STARTTLS' 'ETRN example.test' 'QUIT'
  raw 127.0.0.39 $port 'EHLO bot.test' '<close>'
done
sleep 3
tail -c +"$((pf_start + 1))" "$pf_log" >>"$out/postfix.log"
tail -c +"$((sm_start + 1))" "$sm_log" >>"$out/sendmail.log"
wc -l "$out"/*.log
