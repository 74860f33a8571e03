#include "metadataview.h"

#include "document.h"
#include "metadata.h"
#include "pythonrepr.h"
#include "valueitems.h"
#include "valuetext.h"
#include "valuetree.h"

#include <QFileInfo>
#include <QHeaderView>
#include <QStandardItem>
#include <QStandardItemModel>
#include <QTreeView>
#include <QVBoxLayout>

namespace ckpt {

namespace {

// How much of a value the Value column shows inline (elided) and its tooltip whole.
constexpr int kInlineChars = 160;
constexpr std::size_t kTooltipChars = 3000;

// A container or object whose items matter more than their count (class names, mean/std, a
// Namespace of arguments): shown inline as Python prints it, as `ckpt meta` does, instead of "4
// items" or "argparse.Namespace". Tensors keep their own preview (tensor(72.5000)).
bool showsAsRepr(const Value &v)
{
    if (v.isTensor())
        return false;
    return v.isContainer() || v.kind() == Value::Kind::Object;
}

// Sets the row's Value cell to the value's Python repr, elided, with the whole text as its tooltip.
void showRepr(QList<QStandardItem *> &row, const ValuePtr &value)
{
    if (!value || !showsAsRepr(*value) || row.size() < 3)
        return;
    ReprLimits limits;
    limits.maxChars = kTooltipChars;
    const QString whole = QString::fromStdString(pythonRepr(*value, limits));
    if (whole.isEmpty())
        return;
    row[2]->setText(whole.size() > kInlineChars ? whole.left(kInlineChars - 1) + QStringLiteral("\u2026") : whole);
    row[2]->setToolTip(whole.size() > kInlineChars ? whole : QString());
}

// Where the field was found, in words: the Type column of "At a glance".
QString fieldSource(const KnownField &f)
{
    const QString key = QString::fromStdString(f.key);
    if (f.fromSidecar)
        return MetadataView::tr("saved as %1 in the sidecar").arg(key);
    if (f.fromFormatMetadata)
        return MetadataView::tr("saved as %1 in __metadata__").arg(key);
    return MetadataView::tr("saved as %1").arg(key);
}

} // namespace

MetadataView::MetadataView(QWidget *parent) : QWidget(parent)
{
    m_model = new QStandardItemModel(this);
    m_view = new QTreeView(this);
    m_view->setObjectName(QStringLiteral("metadataTree"));
    m_view->setModel(m_model);
    m_view->setUniformRowHeights(true);
    m_view->setAlternatingRowColors(true);
    m_view->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_view->setAllColumnsShowFocus(true);
    m_view->header()->setStretchLastSection(true);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addWidget(m_view);
}

QString MetadataView::summaryTitle() { return tr("At a glance"); }
QString MetadataView::metadataTitle() { return tr("Metadata"); }
QString MetadataView::sidecarTitle() { return tr("Sidecar"); }

void MetadataView::setDocument(const std::shared_ptr<const Document> &doc)
{
    m_model->clear();
    m_model->setHorizontalHeaderLabels({tr("Key"), tr("Type"), tr("Value")});
    if (!doc)
        return;
    ValueItemsBudget budget;

    const auto fields = knownFields(*doc);
    if (!fields.empty()) {
        auto section = sectionRow(summaryTitle());
        for (const auto &f : fields) {
            auto row = valueRow(QString::fromStdString(f.label), f.value, budget);
            row[1]->setText(fieldSource(f));
            row[1]->setToolTip(tr("The value saved under the key %1, %2")
                                   .arg(QString::fromStdString(f.key),
                                        f.value ? valuetext::typeText(*f.value) : QStringLiteral("?")));
            showRepr(row, f.value);
            section[0]->appendRow(row);
        }
        m_model->appendRow(section);
    }

    const auto entries = metadataEntries(*doc);
    auto meta = sectionRow(metadataTitle(), entries.empty() ? tr("none besides the weights") : QString());
    for (const auto &e : entries) {
        const QString key = QString::fromStdString(e.key);
        if (e.role == MetadataEntry::Role::Plain) {
            auto row = valueRow(key, e.value, budget);
            showRepr(row, e.value);
            meta[0]->appendRow(row);
        } else {
            auto row = sectionRow(key, e.role == MetadataEntry::Role::OtherWeights
                                           ? tr("another weight set (EMA, a second network): see the structure tree")
                                           : tr("holds the weights or the optimizer state: see the other views"));
            row[0]->setFont(m_view->font());
            meta[0]->appendRow(row);
        }
    }
    if (doc->root && doc->root->kind() == Value::Kind::Object)
        meta[2]->setText(tr("a pickled object of class %1").arg(QString::fromStdString(className(*doc->root))));
    m_model->appendRow(meta);

    if (doc->sidecar) {
        auto section = sectionRow(sidecarTitle(), QFileInfo(QString::fromStdString(doc->sidecarPath)).fileName());
        for (const auto &c : childrenOf(*doc->sidecar))
            section[0]->appendRow(valueRow(QString::fromStdString(c.label), c.value, budget));
        m_model->appendRow(section);
    }
    if (doc->formatMetadata) {
        auto section = sectionRow(doc->format == ContainerFormat::Safetensors ? tr("Safetensors __metadata__")
                                                                               : tr("Index metadata"));
        for (const auto &c : childrenOf(*doc->formatMetadata))
            section[0]->appendRow(valueRow(QString::fromStdString(c.label), c.value, budget));
        m_model->appendRow(section);
    }
    if (!doc->conventions.empty()) {
        auto section = sectionRow(tr("Conventions recognised"));
        for (const auto &c : doc->conventions)
            section[0]->appendRow(sectionRow(QString::fromStdString(c)));
        for (int r = 0; r < section[0]->rowCount(); ++r)
            section[0]->child(r)->setFont(m_view->font());
        m_model->appendRow(section);
    }
    if (!doc->sourceRecords.empty()) {
        auto section = sectionRow(tr("TorchScript code"), tr("listed, never run"));
        for (const auto &r : doc->sourceRecords) {
            auto row = sectionRow(QString::fromStdString(r));
            row[0]->setFont(m_view->font());
            section[0]->appendRow(row);
        }
        m_model->appendRow(section);
    }
    m_view->expandToDepth(0);
    m_view->resizeColumnToContents(0);
    m_view->resizeColumnToContents(1);
}

} // namespace ckpt
