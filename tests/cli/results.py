"""Pass/fail bookkeeping shared by the CLI tests: one line per failure, and the closing line
`N passed, M failed` that CTest's log and CI read."""


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, where, message=''):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL %s: %s' % (where, message) if message else 'FAIL %s' % where)
        return ok

    def finish(self):
        print('%d passed, %d failed' % (self.passed, self.failed))
        return 1 if self.failed else 0
