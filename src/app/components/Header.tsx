import { AdapterBadge } from './AdapterBadge.tsx';
import { Logo } from './Logo.tsx';
import { ThemeToggle } from './ThemeToggle.tsx';

export function Header() {
  return (
    <header className="app-header">
      <div className="brand">
        <Logo />
        <span className="brand-name">QLoRA Studio</span>
        <span className="brand-tagline">fine-tune language models in this tab</span>
      </div>
      <div className="header-tools">
        <AdapterBadge />
        <ThemeToggle />
      </div>
    </header>
  );
}
