#!/usr/bin/env python3
"""gRPC C-core's xDS client for meshpilot's interop tests.

Uses gRPC C-core (PyPI's grpcio wheel, built with the xDS resolver and xDS LB policies)
to call /meshpilot.test.Echo/Whoami through an xds:/// target and prints one JSON line:
{"counts": {"<backend name>": n}, "errors": {"<CODE>: <details>": n},
 "calls": [{"backend": "<name>", "ms": t} or {"error": "<CODE>: <details>", "ms": t}, ...]}.

The xDS bootstrap comes from GRPC_XDS_BOOTSTRAP_CONFIG (JSON text) or GRPC_XDS_BOOTSTRAP
(a file), read by C-core itself. Stdlib + grpc only; no generated stubs (raw bytes).

Exit status: 0 after the calls (whatever they returned), 2 on bad usage,
3 if the grpc module cannot be imported.
"""

import argparse
import json
import os
import sys
import threading
import time

METHOD = '/meshpilot.test.Echo/Whoami'


def _import_grpc():
    try:
        import grpc  # noqa: PLC0415
        return grpc
    except ImportError:
        print(f'xds_client: {sys.executable} cannot import grpc; python3 -m pip install grpcio (.ci/run pins the version)',
              file=sys.stderr)
        sys.exit(3)


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Call Echo/Whoami through an xds:/// target and count backends.')
    parser.add_argument('--target', required=True, help='e.g. xds:///reviews.default.svc.cluster.local:9080')
    parser.add_argument('--count', type=int, default=1, help='number of calls (default 1)')
    parser.add_argument('--header', action='append', default=[], metavar='K:V',
                        help='request metadata, repeatable; the key is lower-cased')
    parser.add_argument('--timeout-ms', type=int, default=2000, help='deadline of each call (default 2000)')
    parser.add_argument('--ready-timeout-ms', type=int, default=20000,
                        help='how long to wait for the channel to become READY (or TRANSIENT_FAILURE) '
                             'before the first call; calls are made anyway when it runs out '
                             '(default 20000; an unknown listener takes C-core 15 s to report; 0 = do not wait)')
    parser.add_argument('--verbose', action='store_true', help='log channel states to stderr')
    parser.add_argument('--method', default=METHOD, help=f'full method path (default {METHOD})')
    parser.add_argument('--interval-ms', type=int, default=0, help='pause between calls (default 0)')
    parser.add_argument('--header-cycle', metavar='K:V1,V2,...',
                        help='call i also sends K with value V[i mod n], e.g. x-user:alice,bob')
    args = parser.parse_args(argv)
    if not args.target.startswith('xds:'):
        parser.error('--target must be an xds: URI, e.g. xds:///name:port')
    if args.count < 0 or args.timeout_ms <= 0 or args.ready_timeout_ms < 0 or args.interval_ms < 0:
        parser.error('--count, --interval-ms and --ready-timeout-ms must be >= 0, --timeout-ms > 0')
    metadata = []
    for header in args.header:
        key, sep, value = header.partition(':')
        key = key.strip().lower()
        if not sep or not key or key.startswith(':'):
            parser.error(f'--header must look like key:value, got {header!r}')
        metadata.append((key, value.strip()))
    args.metadata = tuple(metadata)
    args.cycle = []
    if args.header_cycle:
        key, sep, values = args.header_cycle.partition(':')
        key = key.strip().lower()
        if not sep or not key or key.startswith(':') or not values:
            parser.error(f'--header-cycle must look like key:v1,v2, got {args.header_cycle!r}')
        args.cycle = [(key, v.strip()) for v in values.split(',')]
    if not os.environ.get('GRPC_XDS_BOOTSTRAP_CONFIG') and not os.environ.get('GRPC_XDS_BOOTSTRAP'):
        parser.error('set GRPC_XDS_BOOTSTRAP_CONFIG (JSON text) or GRPC_XDS_BOOTSTRAP (file path)')
    return args


def wait_ready(grpc, channel, timeout_s, verbose):
    """Waits until the channel is READY or TRANSIENT_FAILURE, or the timeout runs out.

    The outcome only affects timing: the calls are made afterwards either way, without
    wait_for_ready, so a failing route shows up as errors instead of a hang. (Calls still
    queue while the xDS resources are loading or a subchannel is CONNECTING.)
    """
    if timeout_s <= 0:
        return
    done = threading.Event()
    seen = []

    def on_state(state):
        seen.append(state)
        if verbose:
            print(f'xds_client: channel {state.name}', file=sys.stderr)
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            done.set()

    channel.subscribe(on_state, try_to_connect=True)
    if not done.wait(timeout_s):
        last = seen[-1].name if seen else 'unknown'
        print(f'xds_client: channel still {last} after {timeout_s}s, calling anyway', file=sys.stderr)
    channel.unsubscribe(on_state)


def error_key(grpc, err):
    code = err.code() if callable(getattr(err, 'code', None)) else None
    details = err.details() if callable(getattr(err, 'details', None)) else str(err)
    name = code.name if isinstance(code, grpc.StatusCode) else 'UNKNOWN'
    return f'{name}: {details}'


def call_once(grpc, call, args, metadata):
    """One call: ('backend', name) or ('error', key)."""
    try:
        body = call(b'', timeout=args.timeout_ms / 1000, metadata=metadata)
    except grpc.RpcError as err:
        return 'error', error_key(grpc, err)
    try:
        name = json.loads(body.decode('utf-8'))['name']
        if not isinstance(name, str):
            raise TypeError('name is not a string')
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return 'error', f'BAD_RESPONSE: {exc}: {body[:200]!r}'
    return 'backend', name


def main(argv):
    args = parse_args(argv)
    grpc = _import_grpc()
    counts, errors, calls = {}, {}, []
    channel = grpc.insecure_channel(args.target)
    try:
        call = channel.unary_unary(args.method, request_serializer=None, response_deserializer=None)
        wait_ready(grpc, channel, args.ready_timeout_ms / 1000, args.verbose)
        for i in range(args.count):
            if i > 0 and args.interval_ms:
                time.sleep(args.interval_ms / 1000)
            metadata = args.metadata + ((args.cycle[i % len(args.cycle)],) if args.cycle else ())
            started = time.monotonic()
            kind, value = call_once(grpc, call, args, metadata)
            calls.append({kind: value, 'ms': round((time.monotonic() - started) * 1000)})
            tally = counts if kind == 'backend' else errors
            tally[value] = tally.get(value, 0) + 1
    finally:
        channel.close()
    sys.stdout.write(json.dumps({'counts': counts, 'errors': errors, 'calls': calls}, sort_keys=True) + '\n')
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
