/** A small coloured dot with text, for one-word states. */
export function StatusDot({ tone, children }: { tone: 'ok' | 'warn' | 'bad' | 'muted' | 'busy'; children: string }) {
  return (
    <span className={`status-dot status-${tone}`}>
      <span className="status-dot-mark" aria-hidden="true" />
      {children}
    </span>
  );
}
