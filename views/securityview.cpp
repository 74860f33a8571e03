#include "securityview.h"

#include "checkpointfolder.h"
#include "document.h"
#include "pythonrepr.h"
#include "security.h"
#include "valuetree.h"

#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTableView>
#include <QVBoxLayout>

#include <unordered_set>

namespace ckpt {

namespace {

// Rows sort dangerous first, then unknown and attribute lookups, then understood.
int severity(GlobalClass c)
{
    switch (c) {
    case GlobalClass::Dangerous: return 0;
    case GlobalClass::Unknown:
    case GlobalClass::Lookup: return 1;
    case GlobalClass::Understood: return 2;
    }
    return 3;
}

QStandardItem *cell(const QString &text, const QVariant &sortKey = {})
{
    auto *item = new QStandardItem(text);
    item->setEditable(false);
    item->setData(sortKey.isValid() ? sortKey : QVariant(text), Qt::UserRole);
    return item;
}

// What the Why column says of a global: the format layer's reason for a dangerous one; else why
// torch.load(weights_only=True) takes or refuses it, so that no row leaves its verdict unexplained.
QString reasonText(const GlobalVerdict &g, bool scriptClass)
{
    if (scriptClass)
        return SecurityView::tr("a TorchScript class: torch.jit.load compiles it from the archive's own code and "
                                "imports no Python module");
    if (!g.reason.empty())
        return QString::fromStdString(g.reason);
    if (g.weightsOnlyAllowed)
        return SecurityView::tr("on torch.load(weights_only=True)'s allow-list");
    switch (g.cls) {
    case GlobalClass::Dangerous:
        return SecurityView::tr("can run code on loading; not on torch.load(weights_only=True)'s allow-list");
    case GlobalClass::Unknown:
        return SecurityView::tr("a class Python would import from its module (the author's code or a library); "
                                "not on torch.load(weights_only=True)'s allow-list");
    case GlobalClass::Understood:
        return SecurityView::tr("read here as data, but not on torch.load(weights_only=True)'s allow-list");
    case GlobalClass::Lookup:
        return SecurityView::tr("only looks a value up by name (Python 3.11 and later pickle enum members this way); "
                                "nothing calls what it finds; not on torch.load(weights_only=True)'s allow-list");
    }
    return {};
}

} // namespace

QMap<QString, QStringList> SecurityView::dangerousCalls(const Document &document, const QStringList &globals,
                                                        int perGlobal)
{
    QMap<QString, QStringList> calls;
    if (globals.isEmpty())
        return calls;
    const std::unordered_set<std::string> wanted = [&] {
        std::unordered_set<std::string> out;
        for (const QString &g : globals)
            out.insert(g.toStdString());
        return out;
    }();
    // Depth first over every value the file holds, each once (a pickle's memo shares them and may
    // make cycles), within a budget: a file of 20,000 tensors has half a million values.
    constexpr std::size_t kBudget = 2'000'000;
    std::unordered_set<const Value *> seen;
    constexpr qsizetype kMaxLabel = 60, kMaxPath = 300;
    struct Step {
        const Value *value;
        QString path;
    };
    std::vector<Step> stack;
    for (const ValuePtr &top : {document.root, document.constants})
        if (top && seen.insert(top.get()).second)
            stack.push_back({top.get(), QString()});
    ReprLimits limits;
    limits.maxChars = 300;
    limits.maxItems = 12;
    limits.maxDepth = 6;
    while (!stack.empty() && seen.size() < kBudget) {
        const Step step = std::move(stack.back());
        stack.pop_back();
        const Value *v = step.value;
        if (!v)
            continue;
        if (v->kind() == Value::Kind::Object) {
            const std::string cls = className(*v);
            if (wanted.count(cls) && calls.value(QString::fromStdString(cls)).size() < perGlobal) {
                QString text = QString::fromStdString(pythonRepr(*v, limits));
                if (!step.path.isEmpty())
                    text = tr("%1 at %2").arg(text, step.path);
                calls[QString::fromStdString(cls)] << text;
            }
        }
        // Each value pushed once (marked when pushed: a list of 4096 references to one value is
        // one step), with a path of bounded length (a key can be megabytes long).
        auto child = [&](const ValuePtr &c, const QString &label) {
            if (!c || !seen.insert(c.get()).second)
                return;
            QString path = step.path.isEmpty() ? label : step.path + QLatin1Char('/') + label;
            if (path.size() > kMaxPath)
                path = QStringLiteral("\u2026") + path.right(kMaxPath - 1);
            stack.push_back({c.get(), std::move(path)});
        };
        // Pushed last first, so that the file's order is the order found.
        const auto &entries = v->entries();
        for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
            const bool named = it->key && it->key->kind() == Value::Kind::String;
            QString key = named ? QString::fromStdString(it->key->text().substr(0, 4 * kMaxLabel)) : QStringLiteral("?");
            if (key.size() > kMaxLabel || (named && it->key->text().size() > 4 * kMaxLabel))
                key = key.left(kMaxLabel - 1) + QStringLiteral("\u2026");
            child(it->value, key);
            child(it->key, key);
        }
        const auto &items = v->items();
        for (std::size_t i = items.size(); i-- > 0;)
            child(items[i], QString::number(i));
        child(v->state(), QStringLiteral("(state)"));
        child(v->args(), QStringLiteral("(arguments)"));
    }
    return calls;
}

SecurityView::SecurityView(QWidget *parent) : QWidget(parent)
{
    m_verdict = new QLabel(this);
    m_verdict->setObjectName(QStringLiteral("securityVerdict"));
    m_verdict->setWordWrap(true);
    m_verdict->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_model = new QStandardItemModel(0, ColumnCount, this);
    m_model->setHorizontalHeaderLabels({tr("Global"), tr("Verdict"), tr("weights_only"), tr("Named"),
                                        tr("First offset"), tr("Called with"), tr("Why")});
    m_proxy = new QSortFilterProxyModel(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(Qt::UserRole);
    m_view = new QTableView(this);
    m_view->setObjectName(QStringLiteral("securityGlobals"));
    m_view->setModel(m_proxy);
    m_view->verticalHeader()->hide();
    m_view->verticalHeader()->setDefaultSectionSize(m_view->fontMetrics().height() + 6);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setSortingEnabled(true);
    m_view->horizontalHeader()->setStretchLastSection(true);
    // A long reason or call wraps within its column (each also has the full text as its tooltip);
    // rows grow to fit what they hold.
    m_view->setWordWrap(true);
    m_view->setTextElideMode(Qt::ElideRight);
    m_view->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_anomalies = new QLabel(this);
    m_anomalies->setObjectName(QStringLiteral("securityAnomalies"));
    m_anomalies->setWordWrap(true);
    m_anomalies->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addWidget(m_verdict);
    layout->addWidget(m_view, 1);
    layout->addWidget(m_anomalies);
}

void SecurityView::setReport(const std::shared_ptr<const SecurityReport> &report, bool torchScript,
                             const Document *document)
{
    m_model->removeRows(0, m_model->rowCount());
    m_anomalies->clear();
    m_anomalies->hide();
    if (!report) {
        m_verdict->clear();
        return;
    }
    // What Python would call, for the dangerous globals and the unknown ones (code this reader cannot
    // judge, which Python would import and call with these arguments).
    QMap<QString, QStringList> calls;
    if (document) {
        QStringList names;
        for (const auto &g : report->globals)
            if (g.cls == GlobalClass::Dangerous || g.cls == GlobalClass::Unknown)
                names << QString::fromStdString(g.use.name);
        calls = dangerousCalls(*document, names);
    }
    int dangerous = 0, unknown = 0, scriptClasses = 0, lookups = 0;
    for (const auto &g : report->globals) {
        const GlobalClass c = g.cls;
        // A TorchScript archive's own classes are compiled from its code, never imported.
        const bool scriptClass = torchScript && c == GlobalClass::Unknown && g.use.name.starts_with("__torch__.");
        dangerous += c == GlobalClass::Dangerous;
        unknown += c == GlobalClass::Unknown && !scriptClass;
        scriptClasses += scriptClass;
        lookups += c == GlobalClass::Lookup;
        QList<QStandardItem *> row{
            cell(QString::fromStdString(g.use.name)),
            cell(QString::fromStdString(globalClassName(c)), severity(c)),
            cell(g.weightsOnlyAllowed ? tr("allowed") : tr("refused"), g.weightsOnlyAllowed ? 1 : 0),
            cell(QString::number(g.use.count), qlonglong(g.use.count)),
            cell(QString::number(g.use.firstOffset), qulonglong(g.use.firstOffset)),
            cell(calls.value(QString::fromStdString(g.use.name)).join(QLatin1Char('\n'))),
            cell(reasonText(g, scriptClass)),
        };
        row[ReasonColumn]->setToolTip(row[ReasonColumn]->text());
        if (!row[CallColumn]->text().isEmpty())
            row[CallColumn]->setToolTip(tr("What Python would call on loading the file (never run here):\n%1")
                                            .arg(row[CallColumn]->text()));
        row[UsesColumn]->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        row[OffsetColumn]->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        row[OffsetColumn]->setToolTip(tr("Byte offset of the first pickle opcode naming it"));
        if (c != GlobalClass::Understood) {
            const QColor bg = c == GlobalClass::Dangerous ? QColor(0xf9, 0xd6, 0xd3) : QColor(0xfd, 0xf0, 0xc8);
            for (auto *item : row) {
                item->setBackground(bg);
                item->setForeground(QColor(0x20, 0x20, 0x20));
            }
        }
        m_model->appendRow(row);
    }
    m_view->sortByColumn(VerdictColumn, Qt::AscendingOrder);
    m_view->resizeColumnsToContents();
    // The reason and the call share what the other columns leave, each wrapping within its half;
    // without a call to show, the reason takes it all.
    auto *header = m_view->horizontalHeader();
    const int em = m_view->fontMetrics().horizontalAdvance(QLatin1Char('m'));
    header->resizeSection(NameColumn, std::min(header->sectionSize(NameColumn), 22 * em));
    m_view->setColumnHidden(CallColumn, calls.isEmpty());
    header->setSectionResizeMode(CallColumn, QHeaderView::Stretch);
    header->setSectionResizeMode(ReasonColumn, QHeaderView::Stretch);

    QString text;
    if (report->dangerous)
        text = tr("<b style='color:#b3261e'>\u26a0 Loading this file in Python would run code.</b> %1 named here can "
                  "execute commands, import modules or reach files; Checkpoint Studio read the file as data and ran "
                  "nothing.")
                   .arg(dangerous == 1 ? tr("1 global") : tr("%1 globals").arg(dangerous));
    else if (unknown > 0 && !torchScript)
        text = tr("<b>No dangerous global.</b> Python would import %1 from their modules (the author's code or a "
                  "library); this reader keeps them opaque.")
                   .arg(unknown == 1 ? tr("1 class") : tr("%1 classes").arg(unknown));
    else if (scriptClasses > 0 || unknown > 0)
        text = tr("<b>No dangerous global.</b> torch.jit.load compiles %1 from the archive's own code and imports "
                  "no Python module; this reader keeps them opaque.")
                   .arg(scriptClasses + unknown == 1 ? tr("1 TorchScript class")
                                                     : tr("%1 TorchScript classes").arg(scriptClasses + unknown));
    else if (lookups == 0)
        text = tr("<b>No dangerous global.</b> Every global is a reconstructor or container read as data.");
    else
        text = tr("<b>No dangerous global.</b>");
    if (!report->dangerous && lookups > 0)
        text += QLatin1Char(' ') + tr("builtins.getattr only looks values up by name, as Python 3.11 and later "
                                      "pickle enum members; nothing calls what it finds.");
    text += QLatin1Char(' ');
    text += report->weightsOnlyLoadable
                ? tr("<code>torch.load(weights_only=True)</code> of PyTorch 2.6 and later would accept it.")
                : tr("<code>torch.load(weights_only=True)</code> of PyTorch 2.6 and later would refuse it (%1).")
                      .arg(QString::fromStdString([&] {
                               // A TorchScript or tar file is refused whole, before any global is read.
                               if (!report->weightsOnlyFileReason.empty())
                                   return report->weightsOnlyFileReason;
                               std::string s;
                               // A blocker that is a remark in parentheses ("(safetensors: no pickle
                               // ...)") loses them here: this sentence puts the list in its own.
                               for (std::size_t i = 0; i < report->weightsOnlyBlockers.size() && i < 5; ++i) {
                                   std::string_view b = report->weightsOnlyBlockers[i];
                                   if (b.size() > 2 && b.front() == '(' && b.back() == ')')
                                       b = b.substr(1, b.size() - 2);
                                   s += (i ? ", " : "") + std::string(b);
                               }
                               if (report->weightsOnlyBlockers.size() > 5)
                                   s += ", \u2026";
                               return s;
                           }())
                               .toHtmlEscaped());
    // A folder: the other pickles a resume loads (optimizer.pt, training_args.bin ...) were read for
    // their globals when it opened; one that would run code outranks the clean weights.
    if (document && document->folder) {
        QStringList bad;
        int scanned = 0;
        std::vector<const FolderPart *> all;
        for (const auto &part : document->folder->parts)
            all.push_back(&part);
        for (const auto &part : document->folder->unlisted)
            all.push_back(&part);
        for (const FolderPart *p : all) {
            const FolderPart &part = *p;
            scanned += part.scanned;
            if (!part.dangerous.empty()) {
                QStringList names;
                for (const auto &n : part.dangerous)
                    names << QString::fromStdString(n);
                bad << tr("%1 (names %2)").arg(QString::fromStdString(part.name), names.join(QStringLiteral(", ")))
                           .toHtmlEscaped();
            }
        }
        if (!bad.isEmpty())
            text = tr("<b style='color:#b3261e'>\u26a0 Loading another file of this folder in Python would run "
                      "code:</b> %1. Checkpoint Studio read it as data and ran nothing.<br>")
                       .arg(bad.join(QStringLiteral("; "))) +
                   tr("The weights file: ") + text;
        else if (scanned > 0)
            text += QLatin1Char(' ') + (scanned == 1 ? tr("The folder's other pickle names no dangerous global.")
                                                     : tr("The folder's %1 other pickles name no dangerous global.")
                                                           .arg(scanned));
        if (document->folder->entriesCut)
            text += QStringLiteral("<br>") +
                    tr("<b>Not every file was scanned:</b> the folder has more than %1 entries; scan the others by "
                       "name.")
                        .arg(FolderLimits::kMaxEntries);
    }
    m_verdict->setText(text);
    if (!report->anomalies.empty()) {
        QStringList lines;
        for (const auto &a : report->anomalies)
            lines << QString::fromStdString(a).toHtmlEscaped();
        m_anomalies->setText(tr("<b>Structural anomalies</b><br>") + lines.join(QStringLiteral("<br>")));
        m_anomalies->show();
    }
}

} // namespace ckpt
