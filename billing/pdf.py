"""An invoice as a PDF, drawn with fpdf2 (pure Python, no system binaries)."""

from __future__ import annotations

from fpdf import FPDF

from .models import Invoice

SYMBOLS = {"GBP": "£", "EUR": "EUR ", "USD": "$"}


def _text(value: object) -> str:
    # The core fonts are Latin-1; anything else is replaced rather than failing the document.
    return str(value).replace("-", "-").encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(invoice: Invoice) -> bytes:
    symbol = SYMBOLS.get(invoice.currency, invoice.currency + " ")
    pdf = FPDF(format="A4")
    pdf.set_title(_text(f"{invoice.get_kind_display()} {invoice.number}"))
    pdf.set_creation_date(invoice.issued_at)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(
        0,
        10,
        _text(f"{invoice.get_kind_display()} {invoice.number}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("helvetica", size=10)
    account = invoice.account
    for label, value in (
        ("Account", account.number),
        ("Premises", f"{account.premises.reference} {account.premises.address}".strip()),
        ("Period", f"{invoice.period_start} to {invoice.period_end} (end exclusive)"),
        ("Issued", f"{invoice.issued_at:%Y-%m-%d}"),
    ):
        pdf.cell(0, 6, _text(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    if invoice.credits_id:
        pdf.cell(
            0,
            6,
            _text(f"Credits invoice {invoice.credits.number}: {invoice.reason}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(4)
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(0, 6, "Meter reads", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    for read in invoice.reads.all():
        opening = "estimated" if read.opening_estimated else "actual"
        closing = "estimated" if read.closing_estimated else "actual"
        pdf.cell(
            0,
            5,
            _text(
                f"Meter {read.meter}: opening {read.opening_wh} Wh ({opening}), "
                f"closing {read.closing_wh} Wh ({closing})"
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(4)
    with pdf.table(
        col_widths=(80, 25, 30, 25, 25), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    ) as table:
        table.row(["Item", "Quantity", "Unit price", "Tax rate", "Amount"])
        for line in invoice.lines.all():
            mark = " (estimated)" if line.estimated else ""
            table.row(
                [
                    _text(f"{line.description}{mark}, {line.segment_start} to {line.segment_end}"),
                    _text(f"{line.quantity} {line.unit}"),
                    _text(f"{symbol}{line.unit_price}"),
                    _text(f"{line.tax_rate * 100:.2f}%"),
                    _text(f"{symbol}{line.amount}"),
                ]
            )
    pdf.ln(4)
    pdf.set_font("helvetica", "B", 10)
    for label, value in (
        ("Subtotal", invoice.subtotal),
        ("Tax", invoice.tax),
        ("Total", invoice.total),
    ):
        pdf.cell(0, 6, _text(f"{label}: {symbol}{value}"), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
