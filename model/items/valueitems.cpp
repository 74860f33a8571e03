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
        int listed = 0;
        for (const auto &c : children) {
            if (budget.rows <= 0) {
                items[0]->appendRow({cell(QStringLiteral("\u2026")), cell(QString()),
                                     cell(valuetext::counted(static_cast<qint64>(children.size()) - listed,
                                                             QStringLiteral("more item"), QStringLiteral("more items")))});
                break;
            }
            const QString label = QString::fromStdString(c.label);
            items[0]->appendRow(row(label, c.value, depth + 1));
            ++listed;
        }
        return items;
    }
};

} // namespace

QList<QStandardItem *> valueRow(const QString &key, const std::shared_ptr<Value> &value, ValueItemsBudget &budget)
{
    return Builder{budget, {}}.row(key, value, 0);
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
