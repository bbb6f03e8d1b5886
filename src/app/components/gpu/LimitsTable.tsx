import { formatCount, formatLimit, LIMITS } from '../../format.ts';
import { Card } from '../Card.tsx';

/** The limits the runtime raised to the adapter's maximum, next to the WebGPU defaults. */
export function LimitsTable({ limits }: { limits: Record<string, number> }) {
  return (
    <Card title="Limits" testId="adapter-limits">
      <table className="limits">
        <thead>
          <tr>
            <th scope="col">Limit</th>
            <th scope="col" className="num">
              This adapter
            </th>
            <th scope="col" className="num">
              WebGPU default
            </th>
            <th scope="col">What it bounds</th>
          </tr>
        </thead>
        <tbody>
          {LIMITS.map((info) => {
            const value = limits[info.key];
            const raised = value !== undefined && value > info.defaultValue;
            return (
              <tr key={info.key} data-limit={info.key}>
                <th scope="row">
                  <code>{info.key}</code>
                </th>
                <td
                  className={`num ${raised ? 'raised' : ''}`.trim()}
                  data-testid={`limit-${info.key}`}
                  data-value={value ?? ''}
                  title={value === undefined ? undefined : `${formatCount(value)}${info.kind === 'bytes' ? ' bytes' : ''}`}
                >
                  {value === undefined ? '—' : formatLimit(info, value)}
                </td>
                <td className="num muted">{formatLimit(info, info.defaultValue)}</td>
                <td className="muted">{info.meaning}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </Card>
  );
}
