/**
 * libtensorflow 2.21 logs one notice from a static initializer while tfjs-node loads ("oneDNN custom
 * operations are on", through absl before any log setting is read), so TF_CPP_MIN_LOG_LEVEL cannot
 * silence it; only TF_ENABLE_ONEDNN_OPTS=0 does, at a cost in speed (docs/backends.md). Tests that
 * demand a silent stderr remove exactly these lines and nothing else.
 */
export function withoutLibtensorflowNotice(stderr: string): string {
  return stderr
    .replace(/^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR\n/m, '')
    .replace(/^I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*\n/m, '');
}
