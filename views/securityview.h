#pragma once

#include <QMap>
#include <QStringList>
#include <QWidget>

#include <memory>

class QLabel;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;

namespace ckpt {

struct Document;
struct SecurityReport;

// What loading the file in Python would do: each global its pickles name, with how this reader
// understood it (data it interprets, an unknown class Python would import, or something that runs
// code), whether torch.load(weights_only=True) accepts it, and structural anomalies; a verdict line
// on top.
class SecurityView : public QWidget {
    Q_OBJECT
public:
    enum Column {
        NameColumn,
        VerdictColumn,
        WeightsOnlyColumn,
        UsesColumn,
        OffsetColumn,
        CallColumn,  // what a dangerous or unknown global is called with, as Python would call it, and where
        ReasonColumn,
        ColumnCount
    };
    explicit SecurityView(QWidget *parent = nullptr);
    // `torchScript`: the report is a TorchScript archive's, whose __torch__ classes torch.jit.load
    // compiles from the archive's code rather than importing them. `document`, when given, is
    // searched for the calls of the dangerous globals (their arguments: the command it would run).
    void setReport(const std::shared_ptr<const SecurityReport> &report, bool torchScript = false,
                   const Document *document = nullptr);

    // The calls of each dangerous global in `document`'s values: "posix.system('touch x') at
    // payload", at most `perGlobal` of each (a budget of visited values bounds the walk).
    static QMap<QString, QStringList> dangerousCalls(const Document &document, const QStringList &globals,
                                                     int perGlobal = 3);
    QTableView *view() const { return m_view; }

    QLabel *verdict() const { return m_verdict; }
    QStandardItemModel *model() const { return m_model; }
    QSortFilterProxyModel *proxy() const { return m_proxy; }
    QLabel *anomalies() const { return m_anomalies; }

private:
    QLabel *m_verdict = nullptr;
    QLabel *m_anomalies = nullptr;
    QStandardItemModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QTableView *m_view = nullptr;
};

} // namespace ckpt
