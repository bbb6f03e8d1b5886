/** The studio's mark: a 3×3 grid of weight blocks, half of them quantized. */
export function Logo() {
  const cells = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  return (
    <svg className="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true" focusable="false">
      <rect width="32" height="32" rx="7" className="logo-bg" />
      {cells.map((i) => (
        <rect
          key={i}
          x={7 + (i % 3) * 6.5}
          y={7 + Math.floor(i / 3) * 6.5}
          width="5"
          height="5"
          rx="1"
          className="logo-cell"
          opacity={i % 2 ? 0.55 : 1}
        />
      ))}
    </svg>
  );
}
