#pragma once

#include <QWidget>

#include <memory>

class QLabel;
class QStandardItemModel;
class QTreeView;

namespace ckpt {

struct Document;

// Everything in a checkpoint that is not weights, as a key/value tree: first the fields a
// researcher looks for (epoch, losses, timestamps, versions, config, class names, preprocessing),
// then every metadata entry as saved, the metadata JSON sidecar beside the file, the format's own
// metadata (safetensors __metadata__, a shard index), the conventions recognised and, for
// TorchScript, the code records (listed, never run).
class MetadataView : public QWidget {
    Q_OBJECT
public:
    explicit MetadataView(QWidget *parent = nullptr);
    void setDocument(const std::shared_ptr<const Document> &doc);

    QStandardItemModel *model() const { return m_model; }
    QTreeView *view() const { return m_view; }
    // Section titles, as the top-level rows show them.
    static QString summaryTitle();
    static QString metadataTitle();
    static QString sidecarTitle();

private:
    QStandardItemModel *m_model = nullptr;
    QTreeView *m_view = nullptr;
};

} // namespace ckpt
