/** The honest body of a panel that is not built yet. */
export function PlannedNote() {
  return (
    <p className="planned-note">
      Not built yet. This panel arrives with its part of the engine; until then there is nothing to set here.
    </p>
  );
}
