#include "valueitems.h"

#include "value.h"
#include "valuetext.h"
#include "valuetree.h"

#include <QFont>
#include <QStandardItem>

#include <unordered_set>

namespace ckpt {

namespace {

// A cell shows at most kMaxCell characters (a pickle's key can be megabytes long); its tooltip the
// text up to kMaxTip.
QStandardItem *cell(const QString &text)
{
    constexpr qsizetype kMaxCell = 1000, kMaxTip = 4000;
    auto *item = new QStandardItem(text.size() > kMaxCell ? text.left(kMaxCell - 1) + QStringLiteral("\u2026") : text);
    item->setEditable(false);
    item->setToolTip(text.size() > 60 ? (text.size() > kMaxTip ? text.left(kMaxTip - 1) + QStringLiteral("\u2026") : text)
                                      : QString());
    return item;
}

// Rows made by `rowAt(0..count-1)` under `parent` while the budget lasts, then one row counting
// the rest: a file can hold millions of entries, and each row costs a few hundred bytes of items.
// A row that took nothing from the budget itself (a heading) still counts one.
template <typename RowAt>
void appendBounded(QStandardItem *parent, qint64 count, ValueItemsBudget &budget, RowAt &&rowAt)
{
    for (qint64 listed = 0; listed < count; ++listed) {
        if (budget.rows <= 0) {
            parent->appendRow({cell(QStringLiteral("\u2026")), cell(QString()),
                               cell(valuetext::counted(count - listed, QStringLiteral("more item"),
                                                       QStringLiteral("more items")))});
            return;
        }
        const int before = budget.rows;
        parent->appendRow(rowAt(listed));
        if (budget.rows == before)
            --budget.rows;
    }
}

struct Builder {
    ValueItemsBudget &budget;
    std::unordered_set<const Value *> opened;

    QList<QStandardItem *> row(const QString &key, const ValuePtr &v, int depth)
    {
        --budget.rows;
        QList<QStandardItem *> items{cell(key), cell(v ? valuetext::typeText(*v) : QStringLiteral("?")),
                                     cell(v ? valuetext::preview(*v, 200) : QString())};
        if (!v || !v->isContainer() || v->isTensor())
            return items;
        if (!opened.insert(v.get()).second) {
            items[2]->setText(items[2]->text() + QStringLiteral("  (shown above)"));
            return items;
        }
        const auto children = childrenOf(*v);
        if (children.empty())
            return items;
        if (depth >= budget.maxDepth) {
            items[2]->setText(items[2]->text() + QStringLiteral("  (not opened: nesting limit)"));
            return items;
        }
        appendRows(items[0], children, depth + 1);
        return items;
    }

    void appendRows(QStandardItem *parent, const std::vector<Child> &children, int depth)
    {
        appendBounded(parent, static_cast<qint64>(children.size()), budget, [&](qint64 i) {
            const Child &c = children[static_cast<std::size_t>(i)];
            return row(QString::fromStdString(c.label), c.value, depth);
        });
    }
};

} // namespace

QList<QStandardItem *> valueRow(const QString &key, const std::shared_ptr<Value> &value, ValueItemsBudget &budget)
{
    return Builder{budget, {}}.row(key, value, 0);
}

void appendValueRows(QStandardItem *parent, const std::vector<Child> &children, ValueItemsBudget &budget)
{
    Builder{budget, {}}.appendRows(parent, children, 0);
}

void appendRows(QStandardItem *parent, qint64 count, ValueItemsBudget &budget,
                const std::function<QList<QStandardItem *>(qint64)> &rowAt)
{
    appendBounded(parent, count, budget, rowAt);
}

QList<QStandardItem *> sectionRow(const QString &title, const QString &note)
{
    auto *head = cell(title);
    QFont f = head->font();
    f.setBold(true);
    head->setFont(f);
    return {head, cell(QString()), cell(note)};
}

} // namespace ckpt
