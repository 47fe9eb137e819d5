"""Stage 8, compare: committed modules against fresh ones (check), two trees (diff), each change
explained (drift); the `# astgen-op` records are written by emit and read here."""
