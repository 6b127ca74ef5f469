#!/usr/bin/env python3
"""Compare a fiber dump with what the program that was dumped knows it did.

    dump_check.py EXPECTATIONS DUMP
    dump_check.py - DUMP        only check that the dump is well formed

EXPECTATIONS holds the program's lines (tests/programs/dump_waits.c):
    EXPECT <name> <state> [<wait>]   '~' ends a prefix match, '@x' is
                                     "fiber <id of the fiber named x>"
    FRAME <name> <function>          must be in that fiber's backtrace
    COUNT <n>                        fibers in all
Fibers are matched by their (unique) names.  Also checked: every group's
count equals the fibers listed under it and the summary's figure; the
fibers whose names share a prefix ("rd-", "lock-") form one group.
Prints every mismatch and exits 1 if there is any.
"""
import collections
import re
import sys

FIBER = re.compile(
    r'^( *)fiber (\d+) "([^"]*)" (parked|runnable(?: \(woken\))?|running on carrier \d+|'
    r'running|switching)(?: [\d.]+ s)?(?:: (.*?))?(?: -- (.*))?$')
GROUP = re.compile(r'^([\d,]+) fibers: (.*)$')
SUMMARY = re.compile(r'^  ([\d,]+) fibers?: (.*)$')
FRAME = re.compile(r'^    #\d+\s+(\S+?)\+0x[0-9a-f]+ \(')
HEADER = re.compile(r'^==== fiberize dump, pid \d+: ([\d,]+) fibers')


def num(s):
    return int(s.replace(',', ''))


def parse(path):
    fibers, by_id, groups, summary, total = {}, {}, [], {}, None
    group = None    # the group block being read
    current = None  # the singleton whose frames follow
    for line in open(path, encoding='utf-8', errors='replace'):
        line = line.rstrip('\n')
        m = HEADER.match(line)
        if m:
            total = num(m.group(1))
            continue
        m = SUMMARY.match(line)
        if m and group is None and current is None:
            summary[m.group(2)] = num(m.group(1))
            continue
        m = GROUP.match(line)
        if m:
            group = {'count': num(m.group(1)), 'key': m.group(2), 'frames': [], 'members': []}
            groups.append(group)
            current = None
            continue
        m = FIBER.match(line)
        if m:
            f = {'id': int(m.group(2)), 'name': m.group(3), 'state': m.group(4),
                 'wait': m.group(5) or '', 'note': m.group(6), 'frames': []}
            if m.group(1) and group is not None:
                f['frames'] = group['frames']
                group['members'].append(f)
            else:
                group = None
                current = f
                groups.append({'count': 1, 'key': None, 'frames': f['frames'],
                               'members': [f]})
            if f['id'] in by_id:
                f['duplicate'] = True
            by_id[f['id']] = f
            fibers.setdefault(f['name'], f)
            continue
        m = FRAME.match(line)
        if m:
            fn = m.group(1).split('.')[0]
            if current is not None:
                current['frames'].append(fn)
            elif group is not None:
                group['frames'].append(fn)
    return fibers, by_id, groups, summary, total


def main():
    expect_path, dump_path = sys.argv[1], sys.argv[2]
    fibers, by_id, groups, summary, total = parse(dump_path)
    ids = {f['name']: f['id'] for f in fibers.values()}
    errors = []
    want_count = None
    by_prefix = {}
    # fibers listed under each name: counted once, not per EXPECT line (a
    # scan per line made the 100,000-fiber dump a quarter of an hour's check)
    listed = collections.Counter(f['name'] for f in by_id.values())
    for line in (open(expect_path) if expect_path != '-' else []):
        parts = line.rstrip('\n').split(' ', 3)
        if parts[0] == 'COUNT':
            want_count = int(parts[1])
        elif parts[0] == 'EXPECT':
            name, state = parts[1], parts[2]
            wait = parts[3] if len(parts) > 3 else ''
            wait = re.sub(r'@([\w-]+)', lambda m: 'fiber %s' % ids.get(m.group(1), '?'), wait)
            by_prefix.setdefault(name.rsplit('-', 1)[0], []).append(name)
            f = fibers.get(name)
            if f is None:
                errors.append('%s: not in the dump' % name)
                continue
            if listed[name] != 1:
                errors.append('%s: listed twice' % name)
            if not f['state'].startswith(state):
                errors.append('%s: state %r, expected %r' % (name, f['state'], state))
            if '~' in wait:
                ok = f['wait'].startswith(wait.split('~')[0])
            else:
                ok = f['wait'] == wait
            if not ok:
                errors.append('%s: wait %r, expected %r' % (name, f['wait'], wait))
        elif parts[0] == 'FRAME':
            name, fn = parts[1], parts[2]
            f = fibers.get(name)
            if f is not None and fn not in f['frames']:
                errors.append('%s: %s not in its backtrace %s' % (name, fn, f['frames']))
    if want_count is not None and total != want_count:
        errors.append('dump counts %s fibers, the program has %d' % (total, want_count))
    if want_count is not None and len(fibers) != want_count:
        errors.append('dump lists %d fibers, the program has %d' % (len(fibers), want_count))
    if total is None:
        errors.append('no dump header')
    elif total != len(by_id):
        errors.append('header counts %d fibers, %d listed' % (total, len(by_id)))
    if any(f.get('duplicate') for f in by_id.values()):
        errors.append('a fiber is listed twice')
    if total is not None and sum(summary.values()) != total:
        errors.append('the summary adds up to %d, not %d' % (sum(summary.values()), total))
    for g in groups:
        if g['count'] != len(g['members']):
            errors.append('group %r says %d, lists %d' % (g['key'], g['count'], len(g['members'])))
        if g['key'] is not None and summary.get(g['key']) != g['count']:
            errors.append('group %r: summary says %s' % (g['key'], summary.get(g['key'])))
    group_of = {}
    for i, g in enumerate(groups):
        for f in g['members']:
            group_of[f['name']] = i
    for prefix, names in by_prefix.items():
        gs = {group_of.get(n) for n in names}
        if len(gs) != 1:
            errors.append('fibers %s-*: spread over %d groups' % (prefix, len(gs)))
        elif len(names) > 1 and groups[gs.pop()]['count'] != len(names):
            errors.append('fibers %s-*: their group holds others too' % prefix)
    for e in errors:
        print('dump_check: ' + e)
    if not errors:
        print('dump_check: %d fibers, %d groups: all as the program says' % (len(by_id),
                                                                              len(groups)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
